# shellcheck shell=bash
# scripts/lab: names, addresses and finding a lab that exists (sourced by scripts/lab).

# Normalise a net number: hex 1..ffff, written lowercase without leading zeros.
parse_net() {
    [[ $1 =~ ^[0-9A-Fa-f]{1,4}$ ]] || die "bad --net '$1': a hex number 1..ffff"
    local v=$((16#$1))
    ((v >= 1 && v <= 0xffff)) || die "bad --net '$1': a hex number 1..ffff"
    printf '%x' "$v"
}

# Paths end up unquoted in sshd_config, TOML and JSON: keep them plain.
check_path() {
    [[ $2 == /* ]] || die "$1 must be an absolute path: $2"
    [[ $2 =~ ^[A-Za-z0-9_./+@:,=-]+$ ]] ||
        die "$1 may hold only letters, digits and _ . / + @ : , = - (got '$2')"
}

abspath() { realpath -m -- "$1"; }

# Host i: address $HOSTBASE$i, namespace $NSBASE$i, root-side veth $VETHBASE$i.
set_names() {
    BRIDGE=flbr-$NET
    GATEWAY=$PREFIX:$NET::1
    HOSTBASE=$PREFIX:$NET::1:
    NSBASE=fleet-$NET-
    VETHBASE=fl$NET-
}

# Read a top-level string field of DIR/lab.json (written by this script, one field a line).
json_field() {
    sed -n "s/^  \"$1\": \"\\(.*\\)\",\\{0,1\\}\$/\\1/p" "$DIR/lab.json" 2>/dev/null | head -n1
}

# Locate an existing lab: sets DIR, NET, COUNT, INVENTORY (best effort).
locate_lab() {
    if [[ -n $OPT_DIR ]]; then
        DIR=$(abspath "$OPT_DIR")
    elif [[ -L $REGISTRY/$NAME ]]; then
        DIR=$(readlink "$REGISTRY/$NAME")
    else
        DIR=$REPO/.lab/$NAME
    fi
    NET='' COUNT=0 INVENTORY=''
    if [[ -f $DIR/lab.json ]]; then
        NET=$(json_field net)
        INVENTORY=$(json_field inventory)
        COUNT=$(grep -c '"index":' "$DIR/lab.json" || true)
        [[ -n $NET ]] && NET=$(parse_net "$NET")
    fi
    if [[ -z $NET ]]; then NET=$(parse_net "${OPT_NET:-1}"); fi
    set_names
}

require_lab() {
    locate_lab
    [[ -f $DIR/lab.json ]] || die "no lab named '$NAME' (no $DIR/lab.json)"
    ((COUNT > 0)) || die "$DIR/lab.json lists no hosts"
}

# HOST argument: index or NAME-index.
host_index() {
    local h=$1
    [[ $h == "$NAME"-* && ${h#"$NAME"-} =~ ^[0-9]+$ ]] && h=${h#"$NAME"-}
    [[ $h =~ ^[0-9]+$ ]] && ((10#$h >= 1 && 10#$h <= COUNT)) ||
        die "no host '$1' in lab '$NAME' (hosts 1..$COUNT or $NAME-1..$NAME-$COUNT)"
    echo $((10#$h))
}

live_pid() {   # prints the pid in file $1 if that process is alive
    local f=$1 p
    [[ -r $f ]] || return 1
    read -r p <"$f" || return 1
    [[ $p =~ ^[0-9]+$ ]] && kill -0 "$p" 2>/dev/null || return 1
    echo "$p"
}

supervisor_pid() { live_pid "$DIR/hosts/$1/supervisor.pid"; }   # host $1's supervisor, if alive
sshd_pid() { live_pid "$DIR/hosts/$1/sshd.pid"; }               # host $1's sshd, if alive

default_inventory() {   # where the lab's inventory goes: --inventory, inventory/lab.toml for "lab", else DIR/lab.toml
    if [[ -n $OPT_INVENTORY ]]; then abspath "$OPT_INVENTORY"
    elif [[ $NAME == lab ]]; then echo "$REPO/inventory/lab.toml"
    else echo "$DIR/lab.toml"; fi
}

# Is something listening on port 22 in the network namespace of pid $1?  (No packets sent.)
listening_22() {
    local _sl laddr _rem st _rest
    [[ -r /proc/$1/net/tcp6 ]] || return 1
    while read -r _sl laddr _rem st _rest; do
        [[ $laddr == *:0016 && $st == 0A ]] && return 0
    done <"/proc/$1/net/tcp6"
    return 1
}

# Does port 22 of address $1 accept a TCP connection?  Bounded by timeout.
answers_22() {
    # shellcheck disable=SC2016  # $1 expands in the inner shell
    timeout 3 bash -c 'true 2>/dev/null 3<>"/dev/tcp/$1/22"' _ "$1" 2>/dev/null
}

net_owner() {   # prints the name of the registered lab using $NET, if any
    local l
    for l in "$REGISTRY"/*; do
        [[ -L $l && -f $l/lab.json ]] || continue
        if [[ $(sed -n 's/^  "net": "\(.*\)",$/\1/p' "$l/lab.json") == "$NET" ]]; then
            basename "$l"; return 0
        fi
    done
    return 0
}

