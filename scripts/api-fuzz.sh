#!/usr/bin/env bash
# Runs schemathesis against the running API (`groupmgr dev`: the app on its embedded SQLite,
# m365-sim standing in for Entra ID, Graph and the Management API) with a valid GroupMgr.Admin
# token, using the app's own description from GET /api/openapi.json. Fails on any 5xx, any
# response that violates the description, or fewer than MIN_REQUESTS requests served.
# Every schemathesis check runs but `positive_data_acceptance`: it expects any schema-valid
# request to succeed, and ours are refused on meaning the schema cannot carry (a cursor this
# API never handed out, a group or user id that does not exist, a policy group that is not a
# security group) with a documented 400/404.
#   scripts/api-fuzz.sh [path/to/groupmgr]      (default: target/debug/groupmgr)
# Needs schemathesis on PATH (`.ci/run` installs the pinned version into .ci/venv).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/debug/groupmgr}
st=${SCHEMATHESIS:-st}
min_requests=${MIN_REQUESTS:-1000}
max_examples=${MAX_EXAMPLES:-80}
. scripts/dev-app.sh "$bin" "$(mktemp -d)" api-fuzz
curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/openapi.json" > "$work/openapi.json"

set +e
"$st" run "$work/openapi.json" --url "http://127.0.0.1:$port" \
  -H "Authorization: Bearer $token" \
  --checks all --exclude-checks positive_data_acceptance \
  --max-examples "$max_examples" --seed 20261127 --workers 2 --request-timeout 30 \
  --no-color --report junit --report-dir "${REPORT_DIR:-target/schemathesis}"
status=$?
set -e
kill $app; wait $app 2>/dev/null || true
requests=$(grep -c '"event":"request"' "$work/app.out" || true)
server_errors=$(grep '"event":"request"' "$work/app.out" | grep -c '"status":5[0-9][0-9]' || true)
echo "api-fuzz: the app served $requests requests, $server_errors with a 5xx status"
[ "$status" -eq 0 ] || { echo "api-fuzz: schemathesis reported failures"; exit 1; }
[ "$server_errors" -eq 0 ] || { echo "api-fuzz: 5xx answers"; exit 1; }
[ "$requests" -ge "$min_requests" ] || { echo "api-fuzz: fewer than $min_requests requests"; exit 1; }
echo "api-fuzz: passed"
