# shellcheck shell=bash
# scripts/lab down: kill what runs in the lab's namespaces, remove them, the veths, the bridge,
# the lab directory and the inventory it wrote (sourced by scripts/lab).

SKIP_NET=0   # set when the net belongs to another lab: leave the network alone

do_down() {
    # Expects DIR, NET, INVENTORY set (locate_lab or cmd_up).
    local namespaces=() links=() ns p pids tries
    if ((SKIP_NET)); then NET=none; fi
    mapfile -t namespaces < <(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^fleet-$NET-[0-9]+\$" || true)
    mapfile -t links < <(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' |
        grep -E "^fl$NET-[0-9]+\$" || true)

    # Kill everything living in the lab's namespaces, until nothing is left (bounded).
    for ((tries = 0; tries < 50; tries++)); do
        pids=()
        for ns in "${namespaces[@]+"${namespaces[@]}"}"; do
            while read -r p; do [[ $p =~ ^[0-9]+$ ]] && pids+=("$p"); done < <(ip netns pids "$ns" 2>/dev/null || true)
        done
        ((${#pids[@]})) || break
        kill -KILL "${pids[@]}" 2>/dev/null || true
        sleep 0.1
    done

    if ((${#links[@]})); then
        for p in "${links[@]}"; do echo "link del $p"; done | ip -force -batch - >/dev/null 2>&1 || true
    fi
    if ((${#namespaces[@]})); then
        for ns in "${namespaces[@]}"; do echo "netns del $ns"; done | ip -force -batch - >/dev/null 2>&1 || true
    fi
    ((SKIP_NET)) || ip link del "$BRIDGE" >/dev/null 2>&1 || true
    # Left by `scripts/lab behind` (behind.sh).
    ((SKIP_NET)) || ip -6 route del unreachable "$PREFIX:$NET::/64" >/dev/null 2>&1 || true

    # The inventory it wrote (only a file carrying our header).
    # fleet's state for it too: its hosts are gone, and a new lab of the same name starts afresh.
    if [[ -n $INVENTORY && -f $INVENTORY ]] && head -n1 "$INVENTORY" | grep -q "^$HEADER"; then
        local state
        state="$(dirname "$INVENTORY")/.fleet/$(basename "$INVENTORY" .toml).state"
        rm -f "$INVENTORY" "$state.json" "$state.json.lock"
    fi
    if [[ -d $DIR && -f $DIR/.fleet-lab ]]; then
        rm -rf -- "$DIR"
    fi
    if [[ -L $REGISTRY/$NAME && $(readlink "$REGISTRY/$NAME") == "$DIR" ]]; then
        rm -f "$REGISTRY/$NAME"
    fi
    echo "lab '$NAME' (net $NET): ${#namespaces[@]} namespace(s) removed"
}

cmd_down() {
    ((${#POS[@]} == 0)) || die "usage: scripts/lab down [--name NAME] [--net X] [--dir DIR]"
    locate_lab
    if [[ -z $INVENTORY ]]; then
        INVENTORY=$(default_inventory)
        # Without lab.json, only remove an inventory that names this lab.
        if [[ -f $INVENTORY ]] && ! grep -q "^name = \"$NAME\"\$" "$INVENTORY"; then INVENTORY=; fi
        # Without a record, the net comes from --net (default 1): never tear down another lab's net.
        local owner
        owner=$(net_owner)
        if [[ -n $owner && $owner != "$NAME" ]]; then
            note "net $NET belongs to lab '$owner', not '$NAME': leaving its network alone"
            SKIP_NET=1
        fi
    fi
    do_down
}

