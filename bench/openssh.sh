#!/usr/bin/env bash
# The kernel-prep job as a shell script around plain OpenSSH clients: one ssh process per host
# per command, all hosts at once, host keys checked against a known_hosts file.
#
# Usage: bench/openssh.sh HOSTS_FILE IDENTITY KNOWN_HOSTS LOG_DIR
#   HOSTS_FILE  one address per line; the first line is the server that holds the token
# Exit status: 0 when every host finished every step, else 1 (failed hosts listed on stderr).
set -u

hosts_file=$1 identity=$2 known_hosts=$3 log_dir=$4
mapfile -t hosts <"$hosts_file"
first=${hosts[0]}

SSH=(ssh -i "$identity" -o UserKnownHostsFile="$known_hosts" -o StrictHostKeyChecking=yes
     -o BatchMode=yes -o ConnectTimeout=10 -l root)

SYSCTL_FILE=/etc/sysctl.d/90-fleet-ipv6.conf
SYSCTL_CONTENT='net.ipv6.conf.all.disable_ipv6 = 0
net.ipv6.conf.all.forwarding = 1
net.ipv6.conf.default.forwarding = 1'
TOKEN_SRC=/var/lib/rancher/k3s/server/node-token
TOKEN_DEST=/etc/rancher/k3s/token

prep() {   # address
    local h=$1
    set -e
    "${SSH[@]}" "$h" cat /proc/sys/net/ipv6/conf/all/disable_ipv6
    "${SSH[@]}" "$h" "cat > $SYSCTL_FILE && sysctl -p $SYSCTL_FILE" <<<"$SYSCTL_CONTENT"
    "${SSH[@]}" "$h" sysctl -n net.ipv6.conf.all.forwarding
    "${SSH[@]}" "$h" ip -6 addr show
    if [[ $h != "$first" ]]; then
        # The token travels over the two pipes, never on a command line.
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
        echo "openssh: $h failed (see $log_dir/$h.log)" >&2
        failed=1
    fi
done
exit $failed
