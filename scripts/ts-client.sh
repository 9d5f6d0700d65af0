#!/usr/bin/env bash
# The API as the UI team uses it. Starts `groupmgr dev` (the app on a throwaway SQLite file,
# m365-sim standing in for Microsoft) and, with its admin token:
#   1. fetches the app's description, GET /api/openapi.json;
#   2. lints it with `redocly lint`, recommended rules: any error or warning fails;
#   3. generates TypeScript types from it with openapi-typescript into
#      tests/ts-client/generated/schema.d.ts;
#   4. type-checks the example client tests/ts-client/client.ts with `tsc` (strict), so a route
#      or property renamed on the Rust side fails here;
#   5. runs that client (openapi-fetch, with tsx) against the app: one line per step, any
#      unexpected status or shape fails.
#   scripts/ts-client.sh [path/to/groupmgr]      (default: target/debug/groupmgr)
# The tools come from .ci/node/node_modules/.bin (`.ci/run` installs .ci/package-lock.json
# there). The description and the lint report are kept in target/ts-client/.
# TS_CLIENT_ALLOW_LINT_FAILURES=1 reports lint problems without failing, for a local run while
# the description is being fixed; CI must not set it (with CI=true it is ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/debug/groupmgr}
tools=$PWD/.ci/node/node_modules/.bin
client=tests/ts-client
out=target/ts-client
for tool in redocly openapi-typescript tsc tsx; do
  [ -x "$tools/$tool" ] || { echo "ts-client: $tools/$tool missing: run the Node step of .ci/run"; exit 1; }
done
allow_lint_failures=${TS_CLIENT_ALLOW_LINT_FAILURES:-0}
if [ "${CI:-}" = true ] && [ "$allow_lint_failures" != 0 ]; then
  echo "ts-client: TS_CLIENT_ALLOW_LINT_FAILURES is ignored in CI"
  allow_lint_failures=0
fi
# No usage reports or update checks from the Redocly CLI (the network here is the registries).
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true NO_UPDATE_NOTIFIER=1

mkdir -p "$out"
. scripts/dev-app.sh "$bin" "$(mktemp -d)" ts-client

# 1. The description.
curl -sSf -H "Authorization: Bearer $token" "$base/api/openapi.json" > "$work/openapi.json" \
  || { echo "ts-client: GET /api/openapi.json failed"; exit 1; }
# Indented, so that the line numbers of the lint report mean something.
python3 -m json.tool --no-ensure-ascii "$work/openapi.json" > "$out/openapi.json"
echo "ts-client: description fetched ($(wc -c < "$out/openapi.json") bytes, $out/openapi.json)"

# 2. Lint: redocly exits non-zero on errors only, so the warnings are counted from its JSON report.
echo "ts-client: redocly lint (recommended rules)"
set +e
"$tools/redocly" lint "$out/openapi.json" --extends=recommended --max-problems=1000 --format=stylish 2>&1 | tee "$out/lint.txt"
"$tools/redocly" lint "$out/openapi.json" --extends=recommended --max-problems=1000 --format=json > "$out/lint.json" 2> "$work/lint.err"
set -e
problems=$(node -e '
  const report = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(`${report.totals.errors} ${report.totals.warnings}`);
  // "#/paths/~1api~1health/get/summary" -> "GET /api/health: summary".
  const where = (pointer) => {
    const [first, path, method, ...rest] = pointer.replace(/^#\//, "").split("/")
      .map((s) => decodeURIComponent(s).replace(/~1/g, "/").replace(/~0/g, "~"));
    return first === "paths" && method
      ? `${method.toUpperCase()} ${path}: ${rest.join("/") || "(operation)"}`
      : pointer;
  };
  for (const p of report.problems) {
    console.error(`  ${p.severity} ${p.ruleId}: ${p.location.map((l) => where(l.pointer)).join(", ")}`);
  }' "$out/lint.json" 2> "$work/where.txt") \
  || { echo "ts-client: no JSON report from redocly lint"; cat "$work/lint.err"; exit 1; }
read -r errors warnings <<< "$problems"
if [ "$errors" -ne 0 ] || [ "$warnings" -ne 0 ]; then
  echo "ts-client: the problems by operation:"
  cat "$work/where.txt"
  if [ "$allow_lint_failures" = 0 ]; then
    echo "ts-client: redocly lint: $errors errors, $warnings warnings (none allowed)"
    exit 1
  fi
  echo "ts-client: redocly lint: $errors errors, $warnings warnings, allowed by TS_CLIENT_ALLOW_LINT_FAILURES"
else
  echo "ts-client: redocly lint: no error, no warning"
fi

# 3. Types. 4. Type check (the packages resolve through a link to .ci/node, like a UI project's
# own node_modules).
rm -rf "$client/generated"
"$tools/openapi-typescript" "$out/openapi.json" -o "$client/generated/schema.d.ts"
ln -sfn ../../.ci/node/node_modules "$client/node_modules"
echo "ts-client: tsc --noEmit -p $client (strict)"
"$tools/tsc" --noEmit -p "$client" || { echo "ts-client: the client does not type-check against the description"; exit 1; }

# 5. The client against the app.
echo "ts-client: running $client/client.ts against $base"
BASE_URL=$base TOKEN=$token "$tools/tsx" "$client/client.ts" \
  || { echo "ts-client: the client failed; the app's last warnings and errors:"
       grep -E '"level":"(WARN|ERROR)"' "$work/app.out" | tail -n 20; tail -n 20 "$work/app.err"; exit 1; }
server_errors=$(grep '"event":"request"' "$work/app.out" | grep -c '"status":5[0-9][0-9]' || true)
[ "$server_errors" -eq 0 ] || { echo "ts-client: $server_errors answers with a 5xx status"; exit 1; }
if [ "$errors" -ne 0 ] || [ "$warnings" -ne 0 ]; then
  echo "ts-client: passed, EXCEPT redocly lint ($errors errors, $warnings warnings)"
else
  echo "ts-client: passed"
fi
