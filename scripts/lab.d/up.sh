# shellcheck shell=bash
# shellcheck disable=SC2015  # `test && test || die` is used on purpose
# scripts/lab up: claim a name and net, build the network, start the hosts, write the
# client files (known_hosts, lab.json, the inventory) (sourced by scripts/lab).

lab_exists_reason() {   # prints why NAME/NET is taken, or nothing
    local down="run 'scripts/lab down --name $NAME' first" other="choose another --net"
    if [[ -L $REGISTRY/$NAME && -f $(readlink "$REGISTRY/$NAME")/lab.json ]]; then
        echo "a lab named '$NAME' exists (in $(readlink "$REGISTRY/$NAME")); $down"; return
    fi
    [[ -f $DIR/lab.json ]] && { echo "a lab exists in $DIR; $down"; return; }
    local owner
    owner=$(net_owner)
    [[ -n $owner ]] && { echo "net $NET is used by lab '$owner'; $other"; return; }
    ip link show "$BRIDGE" >/dev/null 2>&1 && { echo "bridge $BRIDGE exists (net $NET is in use); $other"; return; }
    local list
    list=$(ip netns list 2>/dev/null || true)
    grep -Eq "^fleet-$NET-[0-9]+( |\$)" <<<"$list" && { echo "namespaces fleet-$NET-* exist (net $NET is in use); $other"; return; }
    list=$(ip -o link show 2>/dev/null || true)
    grep -Eq "^[0-9]+: fl$NET-[0-9]+[@:]" <<<"$list" && { echo "veths fl$NET-* exist (net $NET is in use); $other"; return; }
    if [[ -e $DIR && ! -f $DIR/.fleet-lab ]] && [[ -n $(ls -A "$DIR" 2>/dev/null) ]]; then
        echo "$DIR exists, is not empty and is not a lab directory"; return
    fi
    [[ -f $DIR/.fleet-lab ]] && { echo "$DIR holds a half-built lab; $down"; return; }
    return 0
}

UP_OK=0   # set once the lab is complete; until then a failed `up` tears down what it built
up_cleanup() {
    ((UP_OK)) && return
    note "bring-up failed; tearing the partial lab down"
    do_down >/dev/null 2>&1 || true
}

cmd_up() {
    ((${#POS[@]} == 1)) || die "usage: scripts/lab up N [--servers K] [--name NAME] [--net X] [--dir DIR] [--inventory PATH]"
    local n=${POS[0]}
    [[ $n =~ ^[0-9]+$ ]] && ((10#$n >= 1 && 10#$n <= MAX_HOSTS)) || die "N must be 1..$MAX_HOSTS (got '$n')"
    COUNT=$((10#$n))
    local k=${OPT_SERVERS:-1}
    [[ $k =~ ^[0-9]+$ ]] && ((10#$k >= 1 && 10#$k <= COUNT)) || die "--servers must be 1..$COUNT (got '$k')"
    SERVERS=$((10#$k))
    NET=$(parse_net "${OPT_NET:-1}")
    set_names
    DIR=$(abspath "${OPT_DIR:-$REPO/.lab/$NAME}")
    INVENTORY=$(default_inventory)
    check_path DIR "$DIR"
    check_path inventory "$INVENTORY"
    check_path repo "$REPO"
    [[ $DIR != / ]] || die "DIR must not be /"
    local cmd
    for cmd in ip unshare nsenter setsid ssh-keygen timeout; do
        command -v "$cmd" >/dev/null || die "missing command: $cmd"
    done
    [[ -x /usr/sbin/sshd ]] || die "missing /usr/sbin/sshd (install openssh-server)"

    local t0=$SECONDS
    claim_lab

    UP_OK=0
    trap up_cleanup EXIT

    make_client_identity
    make_host_files
    make_network
    local i
    for ((i = 1; i <= COUNT; i++)); do start_host "$i"; done
    wait_for_sshd
    write_known_hosts
    write_lab_json
    write_inventory

    UP_OK=1
    trap - EXIT
    echo "lab '$NAME': $COUNT host(s) up on $PREFIX:$NET::/64 in $((SECONDS - t0))s"
    echo "  dir:       $DIR"
    echo "  inventory: $INVENTORY"
    echo "  ssh:       ssh -i $DIR/id_ed25519 -o UserKnownHostsFile=$DIR/known_hosts root@${HOSTBASE}1"
}

# Claim the name and net under a lock so two `up`s cannot take the same ones.
claim_lab() {
    mkdir -p "$REGISTRY"
    exec 8>"$REGISTRY/.lock"
    flock 8
    if [[ -L $REGISTRY/$NAME && ! -f $(readlink "$REGISTRY/$NAME")/lab.json && ! -e $(readlink "$REGISTRY/$NAME")/.fleet-lab ]]; then
        rm -f "$REGISTRY/$NAME"   # stale entry of a lab whose directory is gone
    fi
    local why
    why=$(lab_exists_reason)
    [[ -z $why ]] || die "refusing: $why"
    mkdir -p "$DIR/hosts"
    : >"$DIR/.fleet-lab"
    ln -sfn "$DIR" "$REGISTRY/$NAME"
    flock -u 8
    exec 8>&-
}

make_client_identity() {
    # Mount points and the sshd privilege-separation directory (shared, empty).
    mkdir -p /etc/rancher /var/lib/rancher /usr/local/bin /etc/sysctl.d /etc/systemd/system /run/sshd
    chmod 0755 /run/sshd

    # Client identity.
    ssh-keygen -q -N '' -t ed25519 -C "fleet-lab-$NAME" -f "$DIR/id_ed25519"
    cp "$DIR/id_ed25519.pub" "$DIR/authorized_keys"
    if [[ -f $SYSTEMCTL_FIXTURE ]]; then cp "$SYSTEMCTL_FIXTURE" "$DIR/systemctl"; fi
    if [[ -f $JOURNALCTL_FIXTURE ]]; then cp "$JOURNALCTL_FIXTURE" "$DIR/journalctl"; fi
}

# Per-host files and host keys (key generation in parallel batches).
make_host_files() {
    local i jobs=$(( $(nproc) * 2 ))
    for ((i = 1; i <= COUNT; i++)); do
        { write_host_files "$i"; gen_host_keys "$i"; } &
        ((i % jobs)) || wait
    done
    wait
    for ((i = 1; i <= COUNT; i++)); do
        for t in $HOST_KEY_TYPES; do
            [[ -s $DIR/hosts/$i/ssh_host_${t}_key.pub ]] || die "host key generation failed for host $i"
        done
    done
}

# A lab link's MAC address: locally administered, from the net and the host index (0: the bridge).
lab_mac() {
    local net=$((16#$NET)) i=$1
    printf '02:%02x:%02x:%02x:%02x:%02x' $((net >> 8)) $((net & 255)) $((i >> 16)) $(((i >> 8) & 255)) $((i & 255))
}

# Network: bridge, namespaces, veths (root side on the bridge, host side lan0).
#
# The kernel's IPv6 neighbour table is one for every namespace, and once it holds more than
# net.ipv6.neigh.default.gc_thresh3 (1024) entries that can be garbage-collected, new neighbours
# fail ("No route to host"). A lab of N hosts needs 2N of them (each host's gateway, and the root
# side's entry for each host), so a lab of more than STATIC_NEIGH_FROM hosts writes them as
# permanent entries, which the kernel never collects, instead of changing a machine-wide sysctl.
# Smaller labs keep neighbour discovery, so a host whose link is down fails as it would for real.
STATIC_NEIGH_FROM=${FLEET_LAB_STATIC_NEIGH_FROM:-200}
make_network() {
    local i jobs=$(( $(nproc) * 2 )) static=0 neigh=''
    ((COUNT > STATIC_NEIGH_FROM)) && static=1
    ip link add "$BRIDGE" type bridge mcast_snooping 0
    ip link set "$BRIDGE" address "$(lab_mac 0)"
    ip link set "$BRIDGE" addrgenmode none
    ip addr add "$GATEWAY/64" dev "$BRIDGE" nodad
    ip link set "$BRIDGE" up
    {
        for ((i = 1; i <= COUNT; i++)); do echo "netns add $NSBASE$i"; done
    } | ip -batch -
    {
        for ((i = 1; i <= COUNT; i++)); do
            echo "link add $VETHBASE$i type veth peer name lan0 address $(lab_mac "$i") netns $NSBASE$i"
            echo "link set $VETHBASE$i addrgenmode none"
            echo "link set $VETHBASE$i master $BRIDGE up"
        done
    } | ip -batch -
    if ((static)); then
        neigh="neigh replace $GATEWAY lladdr $(lab_mac 0) dev lan0 nud permanent"
        for ((i = 1; i <= COUNT; i++)); do
            echo "neigh replace $HOSTBASE$i lladdr $(lab_mac "$i") dev $BRIDGE nud permanent"
        done | ip -batch -
    fi
    rm -f "$DIR/.netfail"
    for ((i = 1; i <= COUNT; i++)); do
        ((i % jobs)) || wait
        { ip -n "$NSBASE$i" -batch - || echo "$i" >>"$DIR/.netfail"; } <<EOF &
link set lo up
addr replace 127.0.0.1/8 dev lo
addr replace ::1/128 dev lo
link set lan0 up
addr add $HOSTBASE$i/64 dev lan0 nodad
route add ::/0 via $GATEWAY dev lan0
$neigh
EOF
    done
    wait
    [[ ! -s $DIR/.netfail ]] || die "configuring the network of host(s) $(tr '\n' ' ' <"$DIR/.netfail")failed"
}

# Poll until every host's sshd answers on port 22; fail early on a host that cannot come up.
wait_for_sshd() {
    local i deadline=$((SECONDS + UP_TIMEOUT)) pending=() next=() p
    for ((i = 1; i <= COUNT; i++)); do pending+=("$i"); done
    while ((${#pending[@]})); do
        next=()
        for i in "${pending[@]}"; do
            if p=$(sshd_pid "$i") && listening_22 "$p" &&
                true 2>/dev/null 3<>"/dev/tcp/$HOSTBASE$i/22"; then
                continue
            fi
            next+=("$i")
        done
        pending=("${next[@]+"${next[@]}"}")
        ((${#pending[@]})) || break
        if ((SECONDS >= deadline)); then
            note "timed out after ${UP_TIMEOUT}s: ${#pending[@]} host(s) not answering on port 22"
            for i in "${pending[@]:0:5}"; do
                note "--- $NAME-$i ($HOSTBASE$i) host.log:"
                tail -n 5 "$DIR/hosts/$i/host.log" >&2 || true
                note "--- $NAME-$i sshd.log:"
                tail -n 10 "$DIR/hosts/$i/sshd.log" >&2 || true
            done
            exit 1
        fi
        # A supervisor that died, or an sshd that already exited, will not come back: fail now.
        for i in "${pending[@]}"; do
            if [[ -s $DIR/hosts/$i/supervisor.pid ]] && ! supervisor_pid "$i" >/dev/null ||
                grep -q '^sshd .* ended' "$DIR/hosts/$i/host.log" 2>/dev/null; then
                note "host $NAME-$i failed to start"
                note "--- host.log:"; tail -n 10 "$DIR/hosts/$i/host.log" >&2 || true
                note "--- sshd.log:"; tail -n 10 "$DIR/hosts/$i/sshd.log" >&2 || true
                exit 1
            fi
        done
        sleep 0.05
    done
}

write_known_hosts() {
    local i t k_type k_b64
    {
        for ((i = 1; i <= COUNT; i++)); do
            for t in $HOST_KEY_TYPES; do
                read -r k_type k_b64 _ <"$DIR/hosts/$i/ssh_host_${t}_key.pub"
                echo "$HOSTBASE$i $k_type $k_b64"
            done
        done
    } >"$DIR/known_hosts"
}

write_lab_json() {
    local i p
    {
        printf '{\n'
        printf '  "name": "%s",\n' "$NAME"
        printf '  "net": "%s",\n' "$NET"
        printf '  "dir": "%s",\n' "$DIR"
        printf '  "bridge": "%s",\n' "$BRIDGE"
        printf '  "gateway": "%s",\n' "$GATEWAY"
        printf '  "prefix": "%s",\n' "$PREFIX:$NET::/64"
        printf '  "inventory": "%s",\n' "$INVENTORY"
        printf '  "identity": "%s",\n' "$DIR/id_ed25519"
        printf '  "known_hosts": "%s",\n' "$DIR/known_hosts"
        printf '  "hosts": [\n'
        for ((i = 1; i <= COUNT; i++)); do
            p=$(supervisor_pid "$i") || die "host $NAME-$i lost its supervisor"
            printf '    {"index": %d, "name": "%s", "address": "%s", "namespace": "%s", "veth": "%s", "pid": %d}%s\n' \
                "$i" "$NAME-$i" "$HOSTBASE$i" "$NSBASE$i" "$VETHBASE$i" "$p" \
                "$( ((i < COUNT)) && echo , )"
        done
        printf '  ]\n}\n'
    } >"$DIR/lab.json.tmp"
    mv "$DIR/lab.json.tmp" "$DIR/lab.json"
}

write_inventory() {
    local i cidr_len=56   # a /56 holds 256 nodes' /64s; bigger labs get a /52
    ((COUNT <= 256)) || cidr_len=52
    mkdir -p "$(dirname "$INVENTORY")"
    {
        echo "$HEADER: a lab of $COUNT hosts in network namespaces."
        cat <<EOF
[cluster]
name = "$NAME"
cluster_cidr = "fd42:f1e0:$NET::/$cidr_len"
service_cidr = "fd42:f1e1:$NET::/112"
flannel_ipv6_masq = true
disable = ["traefik"]
k3s_version = "v1.31.5+k3s1"

[k3s]
source = "airgap"
airgap_dir = "$REPO/Tests/Fixtures/k3s"

[ssh]
user = "root"
identity = "$DIR/id_ed25519"
known_hosts = "$DIR/known_hosts"
host_key_policy = "strict"
connect_timeout = 5
command_timeout = 120
forks = 50
config = "none"          # the lab's hosts never take settings from this machine's ~/.ssh/config

[preflight]
probe = "$GATEWAY"
check_internet = false   # the lab has no way out: its resolver is a dead lab address
EOF
        for ((i = 1; i <= COUNT; i++)); do
            printf '\n[[hosts]]\nname = "%s"\naddress = "%s"\nrole = "%s"\n' \
                "$NAME-$i" "$HOSTBASE$i" "$( ((i <= SERVERS)) && echo server || echo agent )"
        done
    } >"$INVENTORY.tmp"
    mv "$INVENTORY.tmp" "$INVENTORY"
}
