#!/bin/sh
# Stand-in for the K3s install script (get.k3s.io), used by fleet's test lab.
#
# It follows the real script's documented interface - the INSTALL_K3S_* and
# K3S_* environment variables, the files it writes and when it restarts the
# service - but it never downloads anything: the k3s binary must already be
# at $INSTALL_K3S_BIN_DIR/k3s and INSTALL_K3S_SKIP_DOWNLOAD=true must be set,
# exactly as for an air-gapped install. Real hosts get the real script.
#
# Usage is the same as the real one:
#   INSTALL_K3S_SKIP_DOWNLOAD=true INSTALL_K3S_EXEC="server --cluster-init" ./install.sh
#   INSTALL_K3S_SKIP_DOWNLOAD=true K3S_URL=https://[2001:db8::10]:6443 K3S_TOKEN_FILE=/path ./install.sh
set -e
set -o noglob

log_info() { printf '[INFO]  %s\n' "$*"; }
log_warn() { printf '[WARN]  %s\n' "$*" >&2; }
die() { printf '[ERROR]  %s\n' "$*" >&2; exit 1; }

# --- command line: INSTALL_K3S_EXEC words first, then the script's own arguments ---
# Shell punctuation in INSTALL_K3S_EXEC is escaped so eval only splits it into words
# (quotes still group words, as with the real script).
exec_words=$(printf '%s' "${INSTALL_K3S_EXEC:-}" | sed -e 's/[][!#$%&()*;<=>?\\`{|}]/\\&/g')
eval "set -- ${exec_words} \"\$@\""

# --- a supervisor is required ---
if [ -x /sbin/openrc-run ]; then
    die 'This stand-in installer only supports systemd-style hosts'
fi
if ! [ -x /bin/systemctl ] && ! command -v systemctl >/dev/null 2>&1; then
    die 'Can not find systemd or openrc to use as a process supervisor for k3s'
fi

# --- server or agent ---
case "${1:-}" in
    ""|-*)
        if [ -z "${K3S_URL:-}" ]; then
            CMD_K3S=server
        else
            if [ -z "${K3S_TOKEN:-}" ] && [ -z "${K3S_TOKEN_FILE:-}" ]; then
                die "Defaulted k3s exec command to 'agent' because K3S_URL is defined, but K3S_TOKEN or K3S_TOKEN_FILE is not defined."
            fi
            CMD_K3S=agent
        fi
        ;;
    *)
        CMD_K3S=$1
        shift
        ;;
esac

case "${K3S_URL:-}" in
    ""|https://*) ;;
    *) die "Only https:// URLs are supported for K3S_URL (have ${K3S_URL})" ;;
esac

# --- names and paths ---
if [ -n "${INSTALL_K3S_NAME:-}" ]; then
    SYSTEM_NAME="k3s-${INSTALL_K3S_NAME}"
elif [ "${CMD_K3S}" = server ]; then
    SYSTEM_NAME=k3s
else
    SYSTEM_NAME="k3s-${CMD_K3S}"
fi
case "${SYSTEM_NAME}" in
    *[][!#\$%\&\(\)\*\;\<\=\>\?\\_\`{\|}/\ ]*) die "Invalid characters for system name: ${SYSTEM_NAME}" ;;
esac

SYSTEMD_TYPE=${INSTALL_K3S_TYPE:-notify}
BIN_DIR=${INSTALL_K3S_BIN_DIR:-/usr/local/bin}
SYSTEMD_DIR=${INSTALL_K3S_SYSTEMD_DIR:-/etc/systemd/system}
SERVICE_K3S="${SYSTEM_NAME}.service"
FILE_K3S_SERVICE="${SYSTEMD_DIR}/${SERVICE_K3S}"
FILE_K3S_ENV="${SYSTEMD_DIR}/${SERVICE_K3S}.env"
UNINSTALL_K3S_SH=${UNINSTALL_K3S_SH:-${BIN_DIR}/${SYSTEM_NAME}-uninstall.sh}
KILLALL_K3S_SH=${KILLALL_K3S_SH:-${BIN_DIR}/k3s-killall.sh}
STANDIN_DIR=/var/lib/rancher/.standin

if [ "${INSTALL_K3S_BIN_DIR_READ_ONLY:-}" = true ]; then
    INSTALL_K3S_SKIP_DOWNLOAD=true
fi

installed_hashes() {
    sha256sum "${BIN_DIR}/k3s" "${FILE_K3S_SERVICE}" "${FILE_K3S_ENV}" 2>&1 || true
}
PRE_INSTALL_HASHES=$(installed_hashes)

# --- the binary: never downloaded here ---
case "${INSTALL_K3S_SKIP_DOWNLOAD:-}" in
    true|binary)
        log_info 'Skipping k3s download and verify'
        [ -x "${BIN_DIR}/k3s" ] || die "Executable k3s binary not found at ${BIN_DIR}/k3s"
        ;;
    *)
        die "Downloading k3s is not possible with this stand-in installer (a real node would fetch it from ${GITHUB_URL:-https://github.com/k3s-io/k3s/releases}); put the binary at ${BIN_DIR}/k3s and set INSTALL_K3S_SKIP_DOWNLOAD=true"
        ;;
esac
log_info 'Skipping installation of SELinux RPM'

# Keep a note of what was asked for (the version is otherwise unused without a download).
mkdir -p "${STANDIN_DIR}"
{
    echo "SYSTEM_NAME=${SYSTEM_NAME}"
    echo "CMD_K3S=${CMD_K3S}"
    echo "INSTALL_K3S_VERSION=${INSTALL_K3S_VERSION:-}"
    echo "INSTALL_K3S_CHANNEL=${INSTALL_K3S_CHANNEL:-stable}"
} > "${STANDIN_DIR}/install-${SYSTEM_NAME}.txt"

# --- kubectl / crictl / ctr links ---
if [ "${INSTALL_K3S_BIN_DIR_READ_ONLY:-}" != true ] && [ "${INSTALL_K3S_SYMLINK:-}" != skip ]; then
    for cmd in kubectl crictl ctr; do
        if [ -e "${BIN_DIR}/${cmd}" ] && [ "${INSTALL_K3S_SYMLINK:-}" != force ]; then
            log_info "Skipping ${BIN_DIR}/${cmd} symlink to k3s, already exists"
            continue
        fi
        found=$(command -v "${cmd}" 2>/dev/null || true)
        if [ -n "${found}" ] && [ "${INSTALL_K3S_SYMLINK:-}" != force ]; then
            log_info "Skipping ${BIN_DIR}/${cmd} symlink to k3s, command exists in PATH at ${found}"
        else
            log_info "Creating ${BIN_DIR}/${cmd} symlink to k3s"
            ln -sf k3s "${BIN_DIR}/${cmd}"
        fi
    done
fi

# --- k3s-killall.sh ---
# Lab hosts share the process table, /run and the kernel with each other, so this
# version only stops the k3s units of this host through systemctl; it does not
# kill by name, unmount /run/k3s or delete network interfaces as the real one does.
if [ "${INSTALL_K3S_BIN_DIR_READ_ONLY:-}" != true ]; then
    log_info "Creating killall script ${KILLALL_K3S_SH}"
    cat > "${KILLALL_K3S_SH}" <<EOF
#!/bin/sh
[ "\$(id -u)" -eq 0 ] || exec sudo "\$0" "\$@"
set -x
for service in ${SYSTEMD_DIR}/k3s*.service; do
    [ -s "\$service" ] && systemctl stop "\$(basename "\$service")"
done
# Any k3s main process the supervisor recorded but could not stop.
for pidfile in ${STANDIN_DIR}/k3s*.pid; do
    [ -f "\$pidfile" ] || continue
    pid=\$(cat "\$pidfile")
    # Only a process of this host: same mount namespace as this script.
    if [ -n "\$pid" ] && grep -q k3s "/proc/\$pid/cmdline" 2>/dev/null &&
        [ "\$(readlink "/proc/\$pid/ns/mnt")" = "\$(readlink /proc/self/ns/mnt)" ]; then
        kill -9 "\$pid"
    fi
    rm -f "\$pidfile"
done
exit 0
EOF
    chmod 755 "${KILLALL_K3S_SH}"
fi

# --- uninstall script ---
if [ "${INSTALL_K3S_BIN_DIR_READ_ONLY:-}" != true ]; then
    log_info "Creating uninstall script ${UNINSTALL_K3S_SH}"
    cat > "${UNINSTALL_K3S_SH}" <<EOF
#!/bin/sh
set -x
[ "\$(id -u)" -eq 0 ] || exec sudo "\$0" "\$@"
K3S_DATA_DIR=\${K3S_DATA_DIR:-/var/lib/rancher/k3s}

${KILLALL_K3S_SH}

if command -v systemctl; then
    systemctl disable ${SYSTEM_NAME}
    systemctl reset-failed ${SYSTEM_NAME}
    systemctl daemon-reload
fi

rm -f ${FILE_K3S_SERVICE}
rm -f ${FILE_K3S_ENV}

trap 'rm -f ${UNINSTALL_K3S_SH}' EXIT

if ls ${SYSTEMD_DIR}/k3s*.service >/dev/null 2>&1; then
    set +x; echo 'Additional k3s services installed, skipping uninstall of k3s'; set -x
    exit
fi

for cmd in kubectl crictl ctr; do
    if [ -L ${BIN_DIR}/\$cmd ]; then
        rm -f ${BIN_DIR}/\$cmd
    fi
done

rm -rf /etc/rancher/k3s
rm -rf "\${K3S_DATA_DIR}"
rm -f ${BIN_DIR}/k3s
rm -f ${KILLALL_K3S_SH}
EOF
    chmod 755 "${UNINSTALL_K3S_SH}"
fi

# --- drop the previous unit and env file (they are written again below) ---
systemctl disable "${SYSTEM_NAME}" >/dev/null 2>&1 || true
rm -f "/etc/systemd/system/${SERVICE_K3S}" "/etc/systemd/system/${SERVICE_K3S}.env"

# --- environment file: every K3S_* and CONTAINERD_* variable, plus proxy settings ---
log_info "env: Creating environment file ${FILE_K3S_ENV}"
mkdir -p "${SYSTEMD_DIR}"
(umask 077; : > "${FILE_K3S_ENV}")
chmod 0600 "${FILE_K3S_ENV}"
{
    env | grep -E '^(K3S|CONTAINERD)_[A-Za-z0-9_]*=' | sort || true
    env | grep -Ei '^(NO|HTTP|HTTPS)_PROXY=' | sort || true
} >> "${FILE_K3S_ENV}"

# --- systemd unit ---
log_info "systemd: Creating service file ${FILE_K3S_SERVICE}"
exec_start="${BIN_DIR}/k3s \\
    ${CMD_K3S}"
for arg in "$@"; do
    quoted=$(printf '%s' "${arg}" | sed -e "s/'/'\\\\''/g")
    exec_start="${exec_start} \\
    '${quoted}'"
done
cat > "${FILE_K3S_SERVICE}" <<EOF
[Unit]
Description=Lightweight Kubernetes
Documentation=https://k3s.io
Wants=network-online.target
After=network-online.target

[Install]
WantedBy=multi-user.target

[Service]
Type=${SYSTEMD_TYPE}
EnvironmentFile=-/etc/default/%N
EnvironmentFile=-/etc/sysconfig/%N
EnvironmentFile=-${FILE_K3S_ENV}
KillMode=process
Delegate=yes
User=root
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
TimeoutStartSec=0
Restart=always
RestartSec=5s
ExecStartPre=-/sbin/modprobe br_netfilter
ExecStartPre=-/sbin/modprobe overlay
ExecStart=${exec_start}
EOF

# --- enable and (re)start ---
[ "${INSTALL_K3S_SKIP_ENABLE:-}" = true ] && exit 0

log_info "systemd: Enabling ${SYSTEM_NAME} unit"
systemctl enable "${FILE_K3S_SERVICE}" >/dev/null
systemctl daemon-reload >/dev/null

[ "${INSTALL_K3S_SKIP_START:-}" = true ] && exit 0

POST_INSTALL_HASHES=$(installed_hashes)
if [ "${PRE_INSTALL_HASHES}" = "${POST_INSTALL_HASHES}" ] && [ "${INSTALL_K3S_FORCE_RESTART:-}" != true ]; then
    log_info 'No change detected so skipping service start'
    exit 0
fi

log_info "systemd: Starting ${SYSTEM_NAME}"
systemctl restart "${SYSTEM_NAME}"
