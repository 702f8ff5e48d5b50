# Shared by the demo scripts (sourced): narration, the preconditions, and an HTTP GET.

if [[ -t 1 ]]; then bold=$'\033[1m'; dim=$'\033[2m'; off=$'\033[0m'; else bold= dim= off=; fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$off"; }
run() { printf '%s$ %s%s\n' "$dim" "$*" "$off"; "$@"; }

demo_preconditions() {  # $1: the script's name, for its messages
    if [[ $EUID -ne 0 && -z "${PORTSIDE_ROOT:-}" ]]; then
        echo "$1: run as root (the store lives in /var/lib/portside), or set PORTSIDE_ROOT" >&2
        exit 1
    fi
    command -v portside >/dev/null || { echo "$1: portside is not on PATH (make demo)" >&2; exit 1; }
}

fetch() {  # the body of an HTTP GET, with whichever client the host has
    if command -v curl >/dev/null; then curl -fsS --max-time 5 "$1"
    elif command -v wget >/dev/null; then wget -qO- -T 5 "$1"
    else python3 -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "$1"
    fi
}
