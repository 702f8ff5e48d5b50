#!/bin/sh
# Replaces the venv's `portside` console script with one that starts Python without site
# imports (-S): the hot path of `portside run` needs nothing from site-packages, and site's
# start-up (the venv, .pth files) costs 10-15 ms of every run. Any other command, or a run
# that falls through to click, processes site first and then runs as pip's script would.
# Usage: install-launcher.sh VENV SRC
set -eu
venv=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
tmp="$venv/bin/.portside.new"
cat > "$tmp" <<EOF
#!$venv/bin/python -S
import sys
sys.path.insert(1, "$src")
import portside.cli.fastrun  # \`portside run\`: runs the container and exits here
import site
site.main()
from portside.cli.main import main
sys.exit(main())
EOF
chmod 755 "$tmp"
mv "$tmp" "$venv/bin/portside"
