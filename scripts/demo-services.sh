#!/usr/bin/env bash
# portside demo, services and trust: a service of three replicas behind a port balanced in
# the kernel, a killed task replaced, a rolling update under steady requests with none
# failed, an update to an unhealthy image rolled back on its own, then a signed image
# admitted by the policy and an unsigned one refused. Run by `make demo` as root with
# .venv/bin on PATH and the default PORTSIDE_ROOT (a daemon is started when none answers).
#
#   PORTSIDE_DEMO_REGISTRY_PORT=15001   where this part's registry listens (127.0.0.1)
#   PORTSIDE_DEMO_SERVICE_PORT=18082    the host port the service is published on
set -euo pipefail

source "$(dirname "$0")/demo-lib.sh"

demo_preconditions demo-services
here=$(cd "$(dirname "$0")/.." && pwd)
registry="127.0.0.1:${PORTSIDE_DEMO_REGISTRY_PORT:-15001}"
web_port=${PORTSIDE_DEMO_SERVICE_PORT:-18082}
url="http://127.0.0.1:$web_port/"
work=$(mktemp -d /var/tmp/portside-services.XXXXXX)
registry_pid=""
cleanup() {
    portside service rm demo-web >/dev/null 2>&1 || true
    portside rmi -f demo/web:1 demo/web:2 demo/web:broken "$registry/shop/web:2" \
        "$registry/shop/web:unsigned" >/dev/null 2>&1 || true
    [[ -n "$registry_pid" ]] && kill "$registry_pid" 2>/dev/null && wait "$registry_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

answer() {  # the service's greeting, once it answers
    local body=""
    for _ in $(seq 1 50); do
        body=$(fetch "$url" 2>/dev/null) && break
        sleep 0.2
    done
    sed -n 's:.*<h1>\(.*\)</h1>.*:\1:p' <<<"$body"
}

step "services: the app in three versions: 1 and 2 healthy, 'broken' never healthy"
run portside image bootstrap busybox -q
run portside build -q -t demo/web:1 --build-arg "GREETING=version 1" "$here/examples/hello"
run portside build -q -t demo/web:2 --build-arg "GREETING=version 2" "$here/examples/hello"
mkdir "$work/broken"
printf 'FROM demo/web:2\nHEALTHCHECK --interval=1s --timeout=1s --retries=2 CMD false\n' >"$work/broken/Dockerfile"
run portside build -q -t demo/web:broken "$work/broken"

step "services: this host as a single-node swarm manager"
portside swarm inspect >/dev/null 2>&1 || run portside swarm init
run portside node ls

step "services: three replicas of version 1, published on port $web_port (nftables balances them)"
run portside service create --name demo-web --replicas 3 -p "$web_port:8080" \
    --update-parallelism 1 --update-order start-first --update-monitor 3s \
    --update-failure-action rollback demo/web:1
run portside service ls
run portside service ps demo-web
printf '%s$ GET %s%s\n%s\n' "$dim" "$url" "$off" "$(answer)"
[[ "$(answer)" == "version 1" ]] || { echo "demo-services: the service did not answer" >&2; exit 1; }

step "services: a task whose container dies is replaced"
victim=$(portside ps -q --filter label=com.docker.swarm.service.name=demo-web | head -1)
run portside rm -f "$victim"
for _ in $(seq 1 60); do
    [[ $(portside ps -q --filter label=com.docker.swarm.service.name=demo-web | wc -l) -eq 3 ]] \
        && ! portside ps -q | grep -q "^$victim" && break
    sleep 0.5
done
run portside service ps demo-web

step "services: a rolling update to version 2 while a client sends requests"
( sent=0 failed=0
  while [[ ! -e "$work/stop" ]]; do
      sent=$((sent + 1))
      fetch "$url" >/dev/null 2>&1 || failed=$((failed + 1))
      sleep 0.05
  done
  echo "$sent $failed" >"$work/load" ) &
load_pid=$!
run portside service update --image demo/web:2 demo-web
touch "$work/stop"; wait "$load_pid"
read -r sent failed <"$work/load"
echo "during the update: $sent requests, $failed failed"
printf '%s$ GET %s%s\n%s\n' "$dim" "$url" "$off" "$(answer)"
[[ "$failed" -eq 0 && "$(answer)" == "version 2" ]] || { echo "demo-services: the update dropped requests" >&2; exit 1; }

step "services: an update to an image whose health check fails is rolled back (exit 1)"
if run portside service update --image demo/web:broken demo-web; then
    echo "demo-services: the broken update was not refused" >&2; exit 1
fi
run portside service ps demo-web
printf '%s$ GET %s%s\n%s\n' "$dim" "$url" "$off" "$(answer)"
[[ "$(answer)" == "version 2" ]] || { echo "demo-services: the rollback did not keep version 2" >&2; exit 1; }

step "trust: a registry, a cosign-compatible key, version 2 signed, version 1 not"
portside registry serve --addr "$registry" --root "$work/registry" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 1 50); do fetch "http://$registry/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
run portside tag demo/web:2 "$registry/shop/web:2"
run portside tag demo/web:1 "$registry/shop/web:unsigned"
run portside push -q "$registry/shop/web:2"
run portside push -q "$registry/shop/web:unsigned"
export COSIGN_PASSWORD=demo-only-passphrase
run portside key generate --name release --dir "$work"
run portside sign --key "$work/release.key" "$registry/shop/web:2"
run portside verify --key "$work/release.pub" "$registry/shop/web:2"
cat >"$work/policy.json" <<POLICY
{"default": [{"type": "reject"}],
 "transports": {"docker": {"$registry/shop": [{"type": "sigstoreSigned", "keyPath": "release.pub"}]}}}
POLICY
run cat "$work/policy.json"
run portside policy check --policy "$work/policy.json" "$registry/shop/web:2"
if run portside policy check --policy "$work/policy.json" "$registry/shop/web:unsigned"; then
    echo "demo-services: the policy admitted an unsigned image" >&2; exit 1
fi

step "services: rm takes every task container with it"
run portside service rm demo-web
for _ in $(seq 1 60); do
    [[ -z $(portside ps -aq --filter label=com.docker.swarm.service.name=demo-web) ]] && break
    sleep 0.5
done
run portside ps -a --filter label=com.docker.swarm.service.name=demo-web
step "services: done"
