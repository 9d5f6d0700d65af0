#!/usr/bin/env bash
# Creates (or updates) the multi-tenant GroupMgr app registration in the publisher's own
# tenant from app.json: the exposed scope `access_as_user` on api://<client id>, the app role
# GroupMgr.Admin, v2 access tokens (accessTokenAcceptedVersion 2, in Graph's application
# object `api.requestedAccessTokenVersion`), and the Graph and Office 365 Management API
# permissions, each resolved by name from the resource's service principal. Prints the client
# id and the admin-consent URL customers open.
#   az login --tenant <publisher tenant>   then   infra/app-registration/create.sh
# Needs the Azure CLI and python3. Re-running updates the same registration (found by name).
# GROUPMGR_ALLOWED_CLIENTS (the GroupMgr UI's client id, comma-separated if several) becomes
# the API's knownClientApplications: the same value the Function App's setting holds.
set -euo pipefail
: "${GROUPMGR_ALLOWED_CLIENTS:?set GROUPMGR_ALLOWED_CLIENTS to the GroupMgr UI client id(s)}"
here=$(cd "$(dirname "$0")" && pwd)
spec="$here/app.json"
name=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["displayName"])' "$spec")

app_id=$(az ad app list --display-name "$name" --query "[0].appId" -o tsv)
if [ -z "$app_id" ]; then
  app_id=$(az ad app create --display-name "$name" --sign-in-audience AzureADMultipleOrgs --query appId -o tsv)
  echo "created app registration $name: $app_id"
fi
object_id=$(az ad app show --id "$app_id" --query id -o tsv)

# Permission ids by name, from each resource's service principal (the same in every tenant):
# one line "<resource app id> <Scope|Role> <name> <id>" per permission.
ids=$(mktemp)
python3 - "$spec" <<'PY' | while read -r resource kind perm; do
import json, sys
for res in json.load(open(sys.argv[1]))["permissions"].values():
    for n in res["delegated"]:
        print(res["appId"], "Scope", n)
    for n in res["application"]:
        print(res["appId"], "Role", n)
PY
  field=oauth2PermissionScopes
  [ "$kind" = Role ] && field=appRoles
  id=$(az ad sp show --id "$resource" --query "$field[?value=='$perm'].id | [0]" -o tsv)
  [ -n "$id" ] || { echo "create.sh: $perm ($kind) not found on $resource" >&2; exit 1; }
  echo "$resource $kind $perm $id" >> "$ids"
done

body=$(mktemp)
existing=$(az ad app show --id "$app_id" -o json)
python3 - "$spec" "$app_id" "$existing" "$ids" > "$body" <<'PY'
import json, os, sys, uuid
spec = json.load(open(sys.argv[1]))
app_id = sys.argv[2]
existing = json.loads(sys.argv[3])
ids = {}
for line in open(sys.argv[4]):
    resource, kind, name, pid = line.split()
    ids[(resource, kind, name)] = pid
# Keep ids stable across runs: reuse the ids of an existing scope and roles.
scopes = {s["value"]: s["id"] for s in existing.get("api", {}).get("oauth2PermissionScopes", [])}
roles = {r["value"]: r["id"] for r in existing.get("appRoles", [])}
s = spec["scope"]
out = {
    "signInAudience": spec["signInAudience"],
    "identifierUris": [f"api://{app_id}"],
    "api": {
        "requestedAccessTokenVersion": spec["requestedAccessTokenVersion"],
        "knownClientApplications": [c.strip() for c in os.environ["GROUPMGR_ALLOWED_CLIENTS"].split(",") if c.strip()],
        "oauth2PermissionScopes": [{
            "id": scopes.get(s["value"], str(uuid.uuid4())),
            "value": s["value"],
            "type": s.get("type", "Admin"),
            "isEnabled": True,
            "adminConsentDisplayName": s["adminConsentDisplayName"],
            "adminConsentDescription": s["adminConsentDescription"],
            "userConsentDisplayName": s["userConsentDisplayName"],
            "userConsentDescription": s["userConsentDescription"],
        }],
    },
    "appRoles": [{
        "id": roles.get(r["value"], str(uuid.uuid4())),
        "value": r["value"],
        "displayName": r["displayName"],
        "description": r["description"],
        "allowedMemberTypes": r["allowedMemberTypes"],
        "isEnabled": True,
    } for r in spec["appRoles"]],
    "requiredResourceAccess": [
        {"resourceAppId": res["appId"],
         "resourceAccess": [{"id": ids[(res["appId"], "Scope", n)], "type": "Scope"} for n in res["delegated"]]
                          + [{"id": ids[(res["appId"], "Role", n)], "type": "Role"} for n in res["application"]]}
        for res in spec["permissions"].values()
    ],
}
print(json.dumps(out))
PY
az rest --method PATCH --url "https://graph.microsoft.com/v1.0/applications/$object_id" \
  --headers "Content-Type=application/json" --body "@$body" > /dev/null
az ad sp show --id "$app_id" > /dev/null 2>&1 || az ad sp create --id "$app_id" > /dev/null
rm -f "$body" "$ids"

echo "client id (GROUPMGR_CLIENT_ID): $app_id"
echo "application id URI: api://$app_id (scope api://$app_id/access_as_user)"
echo "next: az ad app credential reset --id $app_id --display-name groupmgr --years 1   (the secret goes to Key Vault only)"
echo "admin consent, for each customer tenant (a Global Administrator or Privileged Role Administrator opens it):"
echo "  https://login.microsoftonline.com/<customer tenant id>/adminconsent?client_id=$app_id&redirect_uri=<GroupMgr UI URL>"
echo "  (v2: https://login.microsoftonline.com/<customer tenant id>/v2.0/adminconsent?client_id=$app_id&scope=https://graph.microsoft.com/.default&redirect_uri=<GroupMgr UI URL>)"
