# shellcheck shell=bash
# shellcheck disable=SC2015  # `test && test || die` is used on purpose
# scripts/lab status, link, exec, rekey, restart: commands on a lab that is up (sourced by scripts/lab).


cmd_status() {
    ((${#POS[@]} == 0)) || die "usage: scripts/lab status [--name NAME]"
    require_lab
    local i ok=1 ns_s sshd_s port_s p addr
    for ((i = 1; i <= COUNT; i++)); do
        addr=$HOSTBASE$i
        if [[ -e /run/netns/$NSBASE$i ]]; then ns_s="netns=yes"; else ns_s="netns=no"; ok=0; fi
        if p=$(sshd_pid "$i"); then sshd_s="sshd=$p"; else sshd_s="sshd=dead"; ok=0; fi
        if answers_22 "$addr"; then port_s="port22=yes"; else port_s="port22=no"; ok=0; fi
        printf '%-14s %-26s %-9s %-12s %s\n' "$NAME-$i" "$addr" "$ns_s" "$sshd_s" "$port_s"
    done
    ((ok))
}

cmd_link() {
    ((${#POS[@]} == 2)) && [[ ${POS[1]} == up || ${POS[1]} == down ]] ||
        die "usage: scripts/lab link HOST down|up [--name NAME]"
    require_lab
    local i
    i=$(host_index "${POS[0]}")
    ip link set "$VETHBASE$i" "${POS[1]}"
    echo "$NAME-$i: $VETHBASE$i ${POS[1]}"
}

cmd_exec() {
    ((${#POS[@]} == 1 && ${#CMDV[@]} >= 1)) || die "usage: scripts/lab exec HOST [--name NAME] -- CMD..."
    require_lab
    local i p
    i=$(host_index "${POS[0]}")
    p=$(supervisor_pid "$i") || die "host $NAME-$i is not running (no supervisor)"
    exec nsenter -t "$p" -m -u -n -- "${CMDV[@]}"
}

cmd_rekey() {
    ((${#POS[@]} == 1)) || die "usage: scripts/lab rekey HOST [--name NAME]"
    require_lab
    local i
    i=$(host_index "${POS[0]}")
    supervisor_pid "$i" >/dev/null || die "host $NAME-$i is not running (no supervisor)"
    local f types=''
    for f in "$DIR/hosts/$i"/ssh_host_*_key; do
        f=${f##*/ssh_host_}; types+=" ${f%_key}"
    done
    HOST_KEY_TYPES=$types
    gen_host_keys "$i"
    restart_sshd "$i"
}

cmd_restart() {
    ((${#POS[@]} == 1)) || die "usage: scripts/lab restart HOST [--name NAME]"
    require_lab
    local i
    i=$(host_index "${POS[0]}")
    restart_sshd "$i"
}
