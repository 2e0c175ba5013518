#!/usr/bin/env bash
# The kernel-prep job with plain OpenSSH clients, batched: one ssh per host runs the prep
# commands in sequence, then the token goes from the server to each other host over a pipe
# between two more ssh processes. All hosts at once; host keys checked against known_hosts.
#
# Usage: bench/openssh-batch.sh HOSTS_FILE IDENTITY KNOWN_HOSTS LOG_DIR
#   HOSTS_FILE  one address per line; the first line is the server that holds the token
# Exit status: 0 when every host finished every step, else 1 (failed hosts listed on stderr).
set -u

hosts_file=$1 identity=$2 known_hosts=$3 log_dir=$4
mapfile -t hosts <"$hosts_file"
first=${hosts[0]}

SSH=(ssh -i "$identity" -o UserKnownHostsFile="$known_hosts" -o StrictHostKeyChecking=yes
     -o BatchMode=yes -o ConnectTimeout=10 -l root)

TOKEN_SRC=/var/lib/rancher/k3s/server/node-token
TOKEN_DEST=/etc/rancher/k3s/token

prep() {   # address
    local h=$1
    set -e
    # shellcheck disable=SC2016  # the script runs, and expands, on the host
    "${SSH[@]}" "$h" 'set -e
cat /proc/sys/net/ipv6/conf/all/disable_ipv6
f=/etc/sysctl.d/90-fleet-ipv6.conf
printf "%s\n" "net.ipv6.conf.all.disable_ipv6 = 0" "net.ipv6.conf.all.forwarding = 1" \
    "net.ipv6.conf.default.forwarding = 1" > $f
sysctl -p $f
sysctl -n net.ipv6.conf.all.forwarding
ip -6 addr show'
    if [[ $h != "$first" ]]; then
        "${SSH[@]}" "$first" cat "$TOKEN_SRC" |
            "${SSH[@]}" "$h" "umask 077; mkdir -p ${TOKEN_DEST%/*} && cat > $TOKEN_DEST"
    fi
}

declare -A pids
for h in "${hosts[@]}"; do
    ( set -o pipefail; prep "$h" ) >"$log_dir/$h.log" 2>&1 &
    pids[$h]=$!
done

failed=0
for h in "${hosts[@]}"; do
    if ! wait "${pids[$h]}"; then
        echo "openssh-batch: $h failed (see $log_dir/$h.log)" >&2
        failed=1
    fi
done
exit $failed
