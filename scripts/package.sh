#!/usr/bin/env bash
# Lays out a deployable Azure Functions folder (and zip) for the custom handler:
#   dist/groupmgr-functions/{host.json, <Function>/function.json, groupmgr}
# This is the layout `func start` and zip deploy expect (the function folders sit at the
# app root next to host.json). Built without the embedded m365-sim.
set -euo pipefail
cd "$(dirname "$0")/.."
out=dist/groupmgr-functions
cargo build --release --no-default-features --bin groupmgr
rm -rf "$out" dist/groupmgr-functions.zip
mkdir -p "$out"
cp host.json "$out/"
for f in functions/*/; do
  cp -r "$f" "$out/"
done
cp target/release/groupmgr "$out/groupmgr"
chmod +x "$out/groupmgr"
(cd "$out" && python3 -m zipfile -c ../groupmgr-functions.zip ./*)
echo "packaged: $out and dist/groupmgr-functions.zip"
