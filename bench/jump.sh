#!/usr/bin/env bash
# `fleet exec -- true` on N hosts directly and on N hosts reachable only through one jump host
# (scripts/lab behind; the bastion's sshd has OpenSSH's default MaxStartups), alternating, RUNS times
# each. Prints every run's seconds and hosts ok, then the medians and their ratio. Run as root from
# the repository root, after `swift build -c release`.
#
# Usage: bench/jump.sh [N] [RUNS] [FLEET]      (default 100 hosts, 5 runs, .build/release/fleet)
# Labs (torn down at the end): jump1 (direct, net e0), jump3 (behind, net e2), jump2 (the bastion, net e1).
set -euo pipefail
N=${1:-100}
RUNS=${2:-5}
FLEET=${3:-.build/release/fleet}
LAB=scripts/lab
[[ -x $FLEET ]] || { echo "no $FLEET: run swift build -c release" >&2; exit 2; }

cleanup() {
    for n in jump3 jump1 jump2; do "$LAB" down --name "$n" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT
cleanup
export FLEET_LAB_HOST_KEYS=ed25519
"$LAB" up "$N" --name jump1 --net e0 --dir /run/fleet-bench-jump1 >/dev/null
"$LAB" up "$N" --name jump3 --net e2 --dir /run/fleet-bench-jump3 >/dev/null
"$LAB" up 1 --name jump2 --net e1 --dir /run/fleet-bench-jump2 >/dev/null
"$LAB" behind --name jump3 --via jump2 >/dev/null

B=/run/fleet-bench-jump2
bastion=$(sed -n 's/.*"address": "\([^"]*\)".*/\1/p' "$B/lab.json" | head -n1)
sed "s/^forks = 50$/forks = $N/" /run/fleet-bench-jump1/lab.toml >/run/fleet-bench-jump1/direct.toml
sed "s|^forks = 50$|forks = $N\njump = [{ host = \"root@[$bastion]:22\", identity = \"$B/id_ed25519\", known_hosts = \"$B/known_hosts\" }]|" \
    /run/fleet-bench-jump3/lab.toml >/run/fleet-bench-jump3/through.toml

one() {   # inventory -> "seconds ok"
    local start end ok
    start=$(date +%s.%N)
    ok=$("$FLEET" exec "$1" -- true 2>/dev/null | grep -c ' ok exit 0' || true)
    end=$(date +%s.%N)
    echo "$(echo "$end - $start" | bc) $ok"
}

one /run/fleet-bench-jump1/direct.toml >/dev/null   # warm-up, untimed
one /run/fleet-bench-jump3/through.toml >/dev/null
direct=() through=()
for ((r = 1; r <= RUNS; r++)); do
    read -r s ok < <(one /run/fleet-bench-jump1/direct.toml); direct+=("$s"); echo "run $r direct:  $s s, $ok/$N ok"
    read -r s ok < <(one /run/fleet-bench-jump3/through.toml); through+=("$s"); echo "run $r through: $s s, $ok/$N ok"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
md=$(median "${direct[@]}")
mt=$(median "${through[@]}")
echo "median: direct $md s, through one jump host $mt s, ratio $(echo "scale=2; $mt / $md" | bc)"
