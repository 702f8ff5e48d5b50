#!/usr/bin/env bash
# portside demo: the image store at work (`make demo` runs this as root, with .venv/bin on
# PATH and the default PORTSIDE_ROOT). Base images made from Debian packages, listed,
# inspected, tagged, saved and loaded back (and read by skopeo/podman when present),
# removed, pruned. Later issues add build, push and run. It only touches names under demo/
# plus busybox:latest and debian:bookworm, which it (re)creates.
#
#   PORTSIDE_DEMO_DEBIAN=0   skip the debootstrap step (about 40 s the first time, cached after)
set -euo pipefail

source "$(dirname "$0")/demo-lib.sh"

demo_preconditions demo

work=$(mktemp -d /var/tmp/portside-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT

step "portside $(portside --version | awk '{print $NF}'), store in ${PORTSIDE_ROOT:-/var/lib/portside}"

step "A base image from Debian's busybox-static: /bin/busybox, its applets, /etc/passwd"
run portside image bootstrap busybox
run portside images

step "What the image is: its config, and annotations saying how it was made"
printf '%s$ portside image inspect busybox%s\n' "$dim" "$off"
portside image inspect busybox | python3 -c '
import json, sys
image = json.load(sys.stdin)[0]
print(json.dumps({"Id": image["Id"], "RepoTags": image["RepoTags"], "Created": image["Created"],
                  "Config": image["Config"], "Layers": image["RootFS"]["Layers"],
                  "Annotations": image.get("Annotations", {})}, indent=2))'
run portside image history busybox

step "The same bytes always give the same image: bootstrap again, same id"
run portside image bootstrap busybox -q

if [[ "${PORTSIDE_DEMO_DEBIAN:-1}" != 0 ]]; then
    step "A minbase Debian image via debootstrap (first time ~40 s), then again: cached"
    if run portside image bootstrap debian --suite bookworm; then
        start=$(date +%s%N)
        run portside image bootstrap debian --suite bookworm -t demo/debian:cached
        printf '%s(cached: %d ms)%s\n' "$dim" $(( ($(date +%s%N) - start) / 1000000 )) "$off"
    else
        echo "(debootstrap failed: skipping the Debian image)"
    fi
fi

step "Names: tag, and the image now has two"
run portside tag busybox demo/base:1.0
run portside images

step "Save to an archive and load it back"
run portside save -o "$work/base.tar" demo/base:1.0
ls -l "$work/base.tar"
run portside rmi demo/base:1.0
run portside load -i "$work/base.tar"
run portside images
run portside save --format oci -o "$work/base-oci.tar" demo/base:1.0
if command -v skopeo >/dev/null; then
    step "Other tools read what portside writes: skopeo"
    printf '%s$ skopeo inspect oci-archive:base-oci.tar%s\n' "$dim" "$off"
    skopeo inspect "oci-archive:$work/base-oci.tar" | python3 -c '
import json, sys
info = json.load(sys.stdin)
print(json.dumps({k: info[k] for k in ("Digest", "Created", "Architecture", "Os", "Layers")},
                 indent=2))'
fi
if command -v podman >/dev/null; then
    step "... and podman (in a private store under a temporary directory)"
    pm() { podman --root "$work/podman/root" --runroot "$work/podman/run" \
        --storage-driver vfs --cgroup-manager cgroupfs --events-backend file "$@"; }
    printf '%s$ podman --root <tmp> load -i base.tar%s\n' "$dim" "$off"
    pm load -q -i "$work/base.tar"
    printf '%s$ podman --root <tmp> images%s\n' "$dim" "$off"
    pm images
fi

step "Removal: rmi untags; an image left without a name is dangling, and prune removes it"
run portside rmi demo/base:1.0
printf '%s$ SOURCE_DATE_EPOCH=1700000000 portside image bootstrap busybox -t demo/scratch:1%s\n' \
    "$dim" "$off"
SOURCE_DATE_EPOCH=1700000000 portside image bootstrap busybox -t demo/scratch:1
run portside image bootstrap busybox -t demo/scratch:1
printf '%s(the first, made with another date, lost its only name: it is dangling now)%s\n' \
    "$dim" "$off"
run portside images
run portside image prune -f
run portside rmi demo/scratch:1
[[ "${PORTSIDE_DEMO_DEBIAN:-1}" == 0 ]] || run portside rmi demo/debian:cached

step "Space used"
run portside system df

step "Done"
