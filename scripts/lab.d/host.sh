# shellcheck shell=bash
# scripts/lab: one lab host — its files, host keys, the supervisor process that keeps its
# namespaces, and (re)starting its sshd (sourced by scripts/lab).

write_host_files() {   # index
    local i=$1 hd=$DIR/hosts/$1 addr=$HOSTBASE$1
    mkdir -p "$hd"
    cat >"$hd/sshd_config" <<EOF
# sshd for lab host $NAME-$i
ListenAddress $addr
Port 22
$(for t in $HOST_KEY_TYPES; do echo "HostKey $hd/ssh_host_${t}_key"; done)
PidFile $hd/sshd.pid
LogLevel INFO
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile $DIR/authorized_keys
MaxStartups 200:30:400
MaxSessions 30
Subsystem sftp internal-sftp
EOF
    printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n%s %s\n' \
        "$addr" "$NAME-$i" >"$hd/hosts"
    printf 'nameserver %s\n' "$GATEWAY" >"$hd/resolv.conf"
    cp /etc/sysctl.conf "$hd/sysctl.conf" 2>/dev/null || : >"$hd/sysctl.conf"
    : >"$hd/host.log"
}

gen_host_keys() {   # index
    local hd=$DIR/hosts/$1 t
    for t in $HOST_KEY_TYPES; do
        rm -f "$hd/ssh_host_${t}_key" "$hd/ssh_host_${t}_key.pub"
        ssh-keygen -q -N '' -t "$t" -C "$NAME-$1" -f "$hd/ssh_host_${t}_key"
    done
}

# Runs as `bash -c` inside the host's fresh mount + UTS namespaces (and its network namespace).
# Arguments: DIR INDEX HOSTNAME

lab_host_main() {
    set -u
    local dir=$1 i=$2 host=$3
    local hd=$dir/hosts/$i
    echo $$ >"$hd/supervisor.pid"
    echo "supervisor $$ for $host starting"
    hostname "$host"

    # Keep DIR reachable: it may lie under a path about to be covered by a tmpfs.
    exec 9<"$dir"

    # Private files.  --no-canonicalize: never let mount resolve paths on its own.
    local f
    for f in hosts resolv.conf sysctl.conf; do
        mount --no-canonicalize --bind "$hd/$f" "/etc/$f"
    done

    # Fresh tmpfs over everything a K3s install writes, and over /tmp and /root. /var/lib/rancher
    # may grow to what a real node has free for K3s (a tmpfs takes memory only for what is written),
    # so that `fleet check` finds the lab's disk sufficient.
    local d mode size
    for d in /etc/rancher /var/lib/rancher /usr/local/bin /etc/sysctl.d /etc/systemd/system /tmp /root; do
        case $d in /tmp) mode=1777 ;; /root) mode=0700 ;; *) mode=0755 ;; esac
        case $d in /var/lib/rancher) size=4g ;; *) size=256m ;; esac
        mount --no-canonicalize -t tmpfs -o "mode=$mode,size=$size" "fleet-$host" "$d"
    done

    # If DIR vanished under a tmpfs, put it back at the same path from the descriptor held open.
    if [[ ! -e $hd/sshd_config ]]; then
        mkdir -p "$dir"
        mount --no-canonicalize --bind /proc/self/fd/9 "$dir"
    fi
    exec 9<&-

    if [[ -f $dir/systemctl ]]; then
        install -m 0755 "$dir/systemctl" /usr/local/bin/systemctl
    fi
    if [[ -f $dir/journalctl ]]; then install -m 0755 "$dir/journalctl" /usr/local/bin/journalctl; fi
    cd /

    local spid='' restart=0 idle='' rc
    start_sshd() {
        rm -f "$hd/sshd.pid"
        /usr/sbin/sshd -D -f "$hd/sshd_config" -E "$hd/sshd.log" </dev/null &
        spid=$!
        echo "sshd started: pid $spid"
    }
    # shellcheck disable=SC2317  # invoked by the trap below
    on_usr1() {
        restart=1
        if [[ -n $spid ]]; then kill -TERM "$spid" 2>/dev/null || true; fi
        if [[ -n $idle ]]; then kill "$idle" 2>/dev/null || true; fi
    }
    trap on_usr1 USR1

    start_sshd
    while :; do
        if [[ -n $spid ]]; then
            # wait returns early when a trapped signal arrives; loop until sshd is really gone.
            while :; do
                rc=0; wait "$spid" || rc=$?
                kill -0 "$spid" 2>/dev/null || break
            done
            echo "sshd $spid ended (wait status $rc)"
            spid=
            rm -f "$hd/sshd.pid"
        fi
        if ((restart)); then
            restart=0
            start_sshd
            continue
        fi
        # sshd is down and nobody asked for it: idle until SIGUSR1.
        sleep 5 &
        idle=$!
        ((restart)) || wait "$idle" || true
        kill "$idle" 2>/dev/null || true
        wait "$idle" 2>/dev/null || true
        idle=
    done
}

HOST_SCRIPT="$(declare -f lab_host_main); lab_host_main \"\$@\""
start_host() {   # index
    local i=$1 hd=$DIR/hosts/$1
    setsid env -i PATH="$HOST_PATH" LANG=C.UTF-8 \
        ip netns exec "$NSBASE$i" \
        unshare --mount --uts --propagation private -- \
        bash -c "$HOST_SCRIPT" lab-host "$DIR" "$i" "$NAME-$i" \
        </dev/null >>"$hd/host.log" 2>&1 &
}

# Ask the supervisor to (re)start sshd and wait for a new sshd answering on port 22.
restart_sshd() {   # index
    local i=$1 sup old new='' deadline next_signal
    sup=$(supervisor_pid "$i") || die "host $NAME-$i is not running (no supervisor)"
    old=$(sshd_pid "$i" || true)
    deadline=$((SECONDS + 15))
    next_signal=0
    while :; do
        if ((SECONDS >= next_signal)); then
            kill -USR1 "$sup" 2>/dev/null || die "host $NAME-$i: supervisor $sup vanished"
            next_signal=$((SECONDS + 3))
        fi
        sleep 0.05
        if new=$(sshd_pid "$i") && [[ $new != "$old" ]] && listening_22 "$new" &&
            true 2>/dev/null 3<>"/dev/tcp/$HOSTBASE$i/22"; then
            break
        fi
        if ((SECONDS >= deadline)); then
            note "host $NAME-$i: sshd did not come back; sshd.log:"
            tail -n 10 "$DIR/hosts/$i/sshd.log" >&2 || true
            exit 1
        fi
    done
    echo "$NAME-$i: sshd restarted (pid ${old:-none} -> $new)"
}

