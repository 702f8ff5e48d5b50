#!/bin/sh
# Every $INTERVAL seconds: count a tick, store it (over the network, with the secret
# token) and write it to the shared volume that the web service reads.
n=0
token=$(cat /run/secrets/store_token)
while true; do
    n=$((n + 1))
    now=$(date +%s)
    if ! wget -q -O /dev/null "http://store:7000/cgi-bin/put?key=ticks&value=$n&token=$token"; then
        echo "store unreachable"
    fi
    echo "tick $n at $now" > /shared/last.tmp && mv /shared/last.tmp /shared/last
    echo "tick $n"
    sleep "${INTERVAL:-2}"
done
