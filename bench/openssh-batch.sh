#!/usr/bin/env bash
# The kernel-prep job with plain OpenSSH clients, batched: one ssh per host runs the prep
# commands in sequence, then the token goes from the server to each other host over a pipe
# between two more ssh processes. All hosts at once; host keys checked against known_hosts.
#
# Usage: bench/openssh-batch.sh HOSTS_FILE IDENTITY KNOWN_HOSTS LOG_DIR
#   HOSTS_FILE  one address per line; the first line is the server that holds the token
# Exit status: 0 when every host finished every step, else 1 (failed hosts listed on stderr).
set -u

# shellcheck source=bench/openssh-common.sh
source "$(dirname "$0")/openssh-common.sh"

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
    copy_token "$h"
}

run_everywhere openssh-batch
