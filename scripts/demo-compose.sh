#!/usr/bin/env bash
# portside demo, compose part: the example application of examples/compose (a web front,
# a worker and a key-value store, each built from a Dockerfile on the bootstrap busybox
# image) brought up with one command, checked over HTTP on its published port, listed,
# and taken down with its volumes. Run by `make demo` as root with .venv/bin on PATH and
# the default PORTSIDE_ROOT (a daemon is started when none answers).
#
#   PORTSIDE_DEMO_PORT=18080   the host port the web service is published on
set -euo pipefail

source "$(dirname "$0")/demo-lib.sh"

demo_preconditions demo-compose

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here/examples/compose"
export WEB_PORT=${PORTSIDE_DEMO_PORT:-18080}
trap 'portside compose down -v -t 1 >/dev/null 2>&1 || true' EXIT

step "compose: the base image the example's Dockerfiles start FROM"
run portside image bootstrap busybox -q

step "compose: the resolved model (compose.yaml + .env, anchors merged, defaults filled)"
run portside compose config --services
printf '%s$ portside compose config | head -25%s\n' "$dim" "$off"
portside compose config | head -25

step "compose: build the three images, start in dependency order, wait until healthy"
run portside compose up -d --build --wait

step "compose: the web service answers on its published port ($WEB_PORT)"
url="http://127.0.0.1:$WEB_PORT/cgi-bin/status"
body=""
for _ in $(seq 1 30); do
    if body=$(fetch "$url" 2>/dev/null) && grep -q 'ticks in the store: [0-9]' <<<"$body"; then
        break
    fi
    sleep 1
done
printf '%s$ GET %s%s\n%s\n' "$dim" "$url" "$off" "$body"
grep -q 'ticks in the store: [0-9]' <<<"$body" || { echo "demo-compose: the web service did not answer as expected" >&2; exit 1; }

step "compose: what runs, with the labels Docker Compose sets"
run portside compose ps
run portside ps --filter label=com.docker.compose.project=portside-example --filter label=com.docker.compose.service=web
run portside compose logs --tail 3 worker

step "compose: up again changes nothing; scaling adds numbered replicas"
run portside compose up -d
run portside compose up -d --scale worker=2
run portside compose ps worker

step "compose: down removes what up made (containers, networks, volumes, secrets tmpfs)"
run portside compose down -v
trap - EXIT
