# shellcheck shell=bash
# shellcheck disable=SC2015  # `test && test || die` is used on purpose
# scripts/lab behind: put a lab's hosts behind the hosts of another lab, its jump hosts
# (sourced by scripts/lab).
#
#   scripts/lab behind --name TARGETS --via BASTIONS
#
# TARGETS loses its bridge address, so this machine has no address and no route on the targets'
# /64 any more: the only way to them is through a BASTIONS host. Each BASTIONS host j gets a
# second leg, in<NET>, on the TARGETS bridge with address PREFIX:NET::b:j (NET: the targets' net;
# j in decimal digits); host 1 also takes the targets' gateway address. Its sshd keeps listening on its own lab's address only. Every BASTIONS
# sshd gets OpenSSH's default MaxStartups (10:30:100: the lab's hosts otherwise allow 200
# pending logins); host 2, when there is one, also gets `AllowTcpForwarding no`.
#
# The root-side ends of the new veths are named fl<NET>-9<j> (j in three digits), inside the
# targets' naming, so `scripts/lab down --name TARGETS` removes them; removing BASTIONS removes
# them too (a veth pair dies with either end).

cmd_behind() {
    ((${#POS[@]} == 0)) && [[ -n $OPT_VIA ]] || die "usage: scripts/lab behind --name TARGETS --via BASTIONS"
    [[ $OPT_VIA =~ ^[A-Za-z0-9][A-Za-z0-9-]{0,39}$ && $OPT_VIA != "$NAME" ]] || die "bad --via '$OPT_VIA'"
    require_lab
    local t_net=$NET t_bridge=$BRIDGE t_gateway=$GATEWAY t_prefix="$PREFIX:$NET"
    # The bastions' lab, in a subshell-free way: read its lab.json directly.
    local v_dir
    v_dir=$(readlink "$REGISTRY/$OPT_VIA" 2>/dev/null) && [[ -f $v_dir/lab.json ]] ||
        die "no lab named '$OPT_VIA'"
    local v_count v_net
    v_count=$(grep -c '"index":' "$v_dir/lab.json")
    v_net=$(sed -n 's/^  "net": "\(.*\)",$/\1/p' "$v_dir/lab.json")
    ((v_count >= 1 && v_count <= 99)) || die "lab '$OPT_VIA' must have 1..99 hosts to be jump hosts"
    [[ $v_net != "$t_net" ]] || die "lab '$OPT_VIA' uses the same net"

    local j veth ns
    for ((j = 1; j <= v_count; j++)); do
        veth=$(printf 'fl%s-9%03d' "$t_net" "$j")
        ns=fleet-$v_net-$j
        [[ -e /run/netns/$ns ]] || die "lab '$OPT_VIA' has no namespace $ns"
        ip link del "$veth" >/dev/null 2>&1 || true
        ip link add "$veth" type veth peer name "in$t_net" netns "$ns"
        ip link set "$veth" addrgenmode none
        ip link set "$veth" master "$t_bridge" up
        ip -n "$ns" -batch - <<EOB
link set in$t_net up
addr add $t_prefix::b:$j/64 dev in$t_net nodad
EOB
        # Host 1 takes over the targets' gateway address (their default route and preflight probe);
        # it does not forward, so nothing passes through it but its sshd's own connections.
        if ((j == 1)); then ip -n "$ns" addr add "$t_gateway/64" dev "in$t_net" nodad; fi
        local conf=$v_dir/hosts/$j/sshd_config
        sed -i '/^MaxStartups /d; /^AllowTcpForwarding /d' "$conf"
        if ((j == 2)); then echo "AllowTcpForwarding no" >>"$conf"; fi
    done
    # The control machine's way in goes last, once every bastion has its leg.
    # An unreachable route keeps packets to the targets on this machine ("Network is unreachable")
    # instead of following the default route out; `down` removes it.
    ip -6 route replace unreachable "$t_prefix::/64"
    ip addr del "$t_gateway/64" dev "$t_bridge" 2>/dev/null || true
    ip -6 route flush dev "$t_bridge" 2>/dev/null || true
    for ((j = 1; j <= v_count; j++)); do
        "$REPO/scripts/lab" restart "$j" --name "$OPT_VIA" >/dev/null
    done
    echo "lab '$NAME': reachable only through lab '$OPT_VIA' (jump hosts $t_prefix::b:1..$v_count on the inside)"
}
