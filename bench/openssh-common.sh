# Shared by bench/openssh.sh and bench/openssh-batch.sh (sourced, not run): the arguments, the ssh
# command line, the token copy, and running `prep` on every host at once.
#
# Arguments of the scripts that source it: HOSTS_FILE IDENTITY KNOWN_HOSTS LOG_DIR
#   HOSTS_FILE  one address per line; the first line is the server that holds the token

hosts_file=$1 identity=$2 known_hosts=$3 log_dir=$4
mapfile -t hosts <"$hosts_file"
first=${hosts[0]}

SSH=(ssh -i "$identity" -o UserKnownHostsFile="$known_hosts" -o StrictHostKeyChecking=yes
     -o BatchMode=yes -o ConnectTimeout=10 -l root)

TOKEN_SRC=/var/lib/rancher/k3s/server/node-token
TOKEN_DEST=/etc/rancher/k3s/token

copy_token() {   # address: the token travels over two pipes, never on a command line
    local h=$1
    if [[ $h != "$first" ]]; then
        "${SSH[@]}" "$first" cat "$TOKEN_SRC" |
            "${SSH[@]}" "$h" "umask 077; mkdir -p ${TOKEN_DEST%/*} && cat > $TOKEN_DEST"
    fi
}

run_everywhere() {   # name: runs `prep HOST` for every host at once; exit status 1 if any failed
    local name=$1 h failed=0
    declare -A pids
    for h in "${hosts[@]}"; do
        ( set -o pipefail; prep "$h" ) >"$log_dir/$h.log" 2>&1 &
        pids[$h]=$!
    done
    for h in "${hosts[@]}"; do
        if ! wait "${pids[$h]}"; then
            echo "$name: $h failed (see $log_dir/$h.log)" >&2
            failed=1
        fi
    done
    return $failed
}
