#!/usr/bin/env bash
# portside demo, the journey: build an app from a Dockerfile, push it to a registry, pull it
# back, run it, and have it answer a request. Run by `make demo` as root with .venv/bin on
# PATH and the default PORTSIDE_ROOT (a daemon is started when none answers).
#
#   PORTSIDE_DEMO_REGISTRY_PORT=15000   where the demo's registry listens (127.0.0.1)
#   PORTSIDE_DEMO_APP_PORT=18081        the host port the app is published on
set -euo pipefail

source "$(dirname "$0")/demo-lib.sh"

demo_preconditions demo-journey
here=$(cd "$(dirname "$0")/.." && pwd)
reg_port=${PORTSIDE_DEMO_REGISTRY_PORT:-15000}
app_port=${PORTSIDE_DEMO_APP_PORT:-18081}
registry="127.0.0.1:$reg_port"
image="$registry/demo/hello:1.0"
work=$(mktemp -d /var/tmp/portside-journey.XXXXXX)
registry_pid=""
cleanup() {
    portside rm -f demo-hello >/dev/null 2>&1 || true
    [[ -n "$registry_pid" ]] && kill "$registry_pid" 2>/dev/null && wait "$registry_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

step "journey: the base image, from Debian's busybox-static"
run portside image bootstrap busybox -q

step "journey: build the app from examples/hello/Dockerfile (RUN steps run in crun containers)"
run portside build --progress plain -t demo/hello:1.0 --build-arg "GREETING=Hello from portside" "$here/examples/hello"
step "journey: build again: every step comes from the cache"
run portside build --progress plain -t demo/hello:1.0 "$here/examples/hello"
run portside image history demo/hello:1.0

step "journey: a registry of our own on $registry (OCI distribution API)"
printf '%s$ portside registry serve --addr %s --root <tmp> &%s\n' "$dim" "$registry" "$off"
portside registry serve --addr "$registry" --root "$work/registry" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 1 50); do
    fetch "http://$registry/v2/" >/dev/null 2>&1 && break
    sleep 0.1
done

step "journey: push, then push again: only what the registry lacks travels"
run portside tag demo/hello:1.0 "$image"
run portside push "$image"
run portside push "$image"
run portside registry tags "$registry/demo/hello"

step "journey: forget the local copy and pull it back from the registry"
run portside rmi "$image" demo/hello:1.0
run portside pull "$image"

step "journey: run it, published on port $app_port, with limits"
run portside run -d --name demo-hello -p "$app_port:8080" --memory 64m --pids-limit 100 "$image"
url="http://127.0.0.1:$app_port/"
body=""
for _ in $(seq 1 50); do
    body=$(fetch "$url" 2>/dev/null) && break
    sleep 0.2
done
printf '%s$ GET %s%s\n%s\n' "$dim" "$url" "$off" "$body"
grep -q "Hello from portside" <<<"$body" || { echo "demo-journey: the app did not answer" >&2; exit 1; }
run portside exec demo-hello cat /www/built.txt
run portside ps --filter name=demo-hello
run portside logs --tail 5 demo-hello
run portside rm -f demo-hello
step "journey: done"
