#!/usr/bin/env bash
# Builds the production binary (x86_64 Linux, without the embedded m365-sim) and lays out the
# deployable Azure Functions folder and zip:
#   <out>/{host.json, <Function>/function.json, groupmgr}   and   <out>.zip
# the layout `func start` and zip deploy expect: function folders at the app root next to
# host.json, and the binary at host.json's customHandler.description.defaultExecutablePath.
#   scripts/package.sh [--out DIR] [--binary PATH]
# Defaults: --out dist/groupmgr-functions, and the release build (what ships). `--binary`
# packages a binary built elsewhere instead of building: tests/package.rs passes the debug
# binary the tests already built, to check the layout without a second build.
set -euo pipefail
cd "$(dirname "$0")/.."
out=dist/groupmgr-functions
binary=
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --binary) binary=$2; shift 2 ;;
    *) echo "package.sh: unknown argument $1 (use --out DIR, --binary PATH)" >&2; exit 2 ;;
  esac
done
if [ -z "$binary" ]; then
  # Azure Functions on Linux (Flex Consumption) runs x86_64 workers; this builds for the
  # host, so it must be one.
  if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
    echo "package.sh: build on x86_64 Linux (this is $(uname -s)-$(uname -m))" >&2
    exit 1
  fi
  cargo build --release --no-default-features --bin groupmgr
  binary=target/release/groupmgr
fi
exe=$(python3 -c 'import json,sys; print(json.load(open("host.json"))["customHandler"]["description"]["defaultExecutablePath"])')
rm -rf "$out" "$out.zip"
mkdir -p "$out"
cp host.json "$out/"
for f in functions/*/; do
  cp -r "$f" "$out/"
done
cp "$binary" "$out/$exe"
chmod +x "$out/$exe"
# Zip entries relative to the app root, the binary keeping its executable bit.
(cd "$out" && python3 - "$(basename "$out").zip" <<'PY'
import os, sys, zipfile
target = os.path.join("..", sys.argv[1])
with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
    for root, _, files in os.walk("."):
        for name in sorted(files):
            path = os.path.join(root, name)
            z.write(path, os.path.relpath(path, "."))
PY
)
echo "packaged: $out and $out.zip"
