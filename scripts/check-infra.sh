#!/usr/bin/env bash
# Policy check of infra/ with checkov (offline: --skip-download). Fails on any failed check,
# on any parsing error (checkov itself exits 0 on those), and when nothing was scanned.
# Skips are in the Bicep files, each with a one-line reason.
#   scripts/check-infra.sh            (needs checkov on PATH, or CHECKOV=path)
set -euo pipefail
cd "$(dirname "$0")/.."
checkov=${CHECKOV:-checkov}
report=$(mktemp)
"$checkov" -d infra --skip-download -o json > "$report" || true
python3 - "$report" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
runs = data if isinstance(data, list) else [data]
total = {"passed": 0, "failed": 0, "skipped": 0, "parsing_errors": 0, "resource_count": 0}
for run in runs:
    summary = run.get("summary", {})
    for key in total:
        total[key] += int(summary.get(key, 0))
    for check in run.get("results", {}).get("failed_checks", []):
        print(f"FAILED {check['check_id']} {check['check_name']}: {check['resource']} ({check['file_path']})")
    for path in run.get("results", {}).get("parsing_errors", []) or []:
        print(f"PARSING ERROR {path}")
print("checkov: " + ", ".join(f"{k} {v}" for k, v in total.items()))
if total["failed"] or total["parsing_errors"] or total["resource_count"] == 0:
    sys.exit(1)
PY
