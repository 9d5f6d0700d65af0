# Sourced by scripts that need the running app: starts `groupmgr dev` (the app on a throwaway
# SQLite file in $work, m365-sim in process) on a free port and waits until it has printed its
# admin token. Sets `port`, `base` (http://127.0.0.1:$port), `token` and `app` (the pid), and
# kills the app when the calling script exits. The app's stdout and stderr are
# $work/app.out and $work/app.err.
#   . scripts/dev-app.sh <path/to/groupmgr> <work dir> <name of the caller, for messages>
start_dev_app() {
  local bin=$1 name=$3
  work=$2
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  FUNCTIONS_CUSTOMHANDLER_PORT=$port GROUPMGR_DATABASE="sqlite:$work/$name.db" \
    "$bin" dev > "$work/app.out" 2> "$work/app.err" &
  app=$!
  trap 'kill $app 2>/dev/null || true; wait $app 2>/dev/null || true; rm -rf "$work"' EXIT
  for _ in $(seq 1 100); do
    grep -q '^Ctrl-C stops both' "$work/app.out" 2>/dev/null && break
    kill -0 "$app" 2>/dev/null || break
    sleep 0.2
  done
  token=$(sed -n '/^Bearer token/{n;p;q}' "$work/app.out")
  [ -n "$token" ] || { echo "$name: groupmgr dev did not start"; cat "$work/app.out" "$work/app.err"; exit 1; }
  base=http://127.0.0.1:$port
}
start_dev_app "$@"
