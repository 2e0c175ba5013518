#!/usr/bin/env bash
# The kernel-prep job as a shell script around plain OpenSSH clients: one ssh process per host
# per command, all hosts at once, host keys checked against a known_hosts file.
#
# Usage: bench/openssh.sh HOSTS_FILE IDENTITY KNOWN_HOSTS LOG_DIR
#   HOSTS_FILE  one address per line; the first line is the server that holds the token
# Exit status: 0 when every host finished every step, else 1 (failed hosts listed on stderr).
set -u

# shellcheck source=bench/openssh-common.sh
source "$(dirname "$0")/openssh-common.sh"

SYSCTL_FILE=/etc/sysctl.d/90-fleet-ipv6.conf
SYSCTL_CONTENT='net.ipv6.conf.all.disable_ipv6 = 0
net.ipv6.conf.all.forwarding = 1
net.ipv6.conf.default.forwarding = 1'

prep() {   # address
    local h=$1
    set -e
    "${SSH[@]}" "$h" cat /proc/sys/net/ipv6/conf/all/disable_ipv6
    "${SSH[@]}" "$h" "cat > $SYSCTL_FILE && sysctl -p $SYSCTL_FILE" <<<"$SYSCTL_CONTENT"
    "${SSH[@]}" "$h" sysctl -n net.ipv6.conf.all.forwarding
    "${SSH[@]}" "$h" ip -6 addr show
    copy_token "$h"
}

run_everywhere openssh
