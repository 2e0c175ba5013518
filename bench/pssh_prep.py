#!/usr/bin/env python3
"""The kernel-prep job with parallel-ssh (ssh2-python, i.e. libssh2): ParallelSSHClient over
every host, one run_command per step, join after each.

Usage: pssh_prep.py HOSTS_FILE IDENTITY KNOWN_HOSTS [prep|true]

The job is the kernel prep (the default) or `true` on every host.

parallel-ssh does not check host keys itself, so its SSHClient is extended to check the server's
key against KNOWN_HOSTS right after the handshake, before authenticating. The first address in
HOSTS_FILE is the server that holds the token. Exit 0 when every host did every step.
"""
import sys

from pssh.clients import ParallelSSHClient, SSHClient
from ssh2 import knownhost as kh
from ssh2 import session as ss

SYSCTL_FILE = "/etc/sysctl.d/90-fleet-ipv6.conf"
SYSCTL_CONTENT = (   # a printf format: printf turns each \n into a newline
    "net.ipv6.conf.all.disable_ipv6 = 0\\n"
    "net.ipv6.conf.all.forwarding = 1\\n"
    "net.ipv6.conf.default.forwarding = 1\\n"
)
TOKEN_SRC = "/var/lib/rancher/k3s/server/node-token"
TOKEN_DEST = "/etc/rancher/k3s/token"

KEY_TYPES = {
    ss.LIBSSH2_HOSTKEY_TYPE_ED25519: kh.LIBSSH2_KNOWNHOST_KEY_ED25519,
    ss.LIBSSH2_HOSTKEY_TYPE_ECDSA_256: kh.LIBSSH2_KNOWNHOST_KEY_ECDSA_256,
    ss.LIBSSH2_HOSTKEY_TYPE_ECDSA_384: kh.LIBSSH2_KNOWNHOST_KEY_ECDSA_384,
    ss.LIBSSH2_HOSTKEY_TYPE_ECDSA_521: kh.LIBSSH2_KNOWNHOST_KEY_ECDSA_521,
    ss.LIBSSH2_HOSTKEY_TYPE_RSA: kh.LIBSSH2_KNOWNHOST_KEY_SSHRSA,
}


class CheckedSSHClient(SSHClient):
    """An SSHClient that refuses a server whose host key is not in known_hosts."""

    known_hosts = None

    def _init_session(self, retries=1):
        super()._init_session(retries=retries)
        key, key_type = self.session.hostkey()
        if key_type not in KEY_TYPES:
            raise ValueError(f"{self.host}: unsupported host key type {key_type}")
        store = self.session.knownhost_init()
        store.readfile(self.known_hosts)
        mask = kh.LIBSSH2_KNOWNHOST_TYPE_PLAIN | kh.LIBSSH2_KNOWNHOST_KEYENC_RAW | KEY_TYPES[key_type]
        # Raises KnownHostCheckNotFoundError / KnownHostCheckMisMatchError.
        store.checkp(self.host.encode(), self.port, key, mask)


class CheckedParallelSSHClient(ParallelSSHClient):
    def _make_ssh_client(self, host, cfg, _pkey_data):
        return CheckedSSHClient(
            host, user=cfg.user or self.user, port=cfg.port or self.port, pkey=_pkey_data,
            num_retries=cfg.num_retries or self.num_retries, timeout=cfg.timeout or self.timeout,
            allow_agent=False, retry_delay=cfg.retry_delay or self.retry_delay,
            _auth_thread_pool=cfg.auth_thread_pool or self._auth_thread_pool,
            keepalive_seconds=cfg.keepalive_seconds or self.keepalive_seconds,
            identity_auth=False)


def check(output, step):
    bad = []
    for out in output:
        if out.exception is not None or out.exit_code != 0:
            stderr = "" if out.stderr is None else " ".join(out.stderr)
            bad.append(f"{out.host}: {step}: exit {out.exit_code} {out.exception or ''} {stderr}")
    return bad


def main(hosts_file, identity, known_hosts, job="prep"):
    with open(hosts_file) as f:
        hosts = [line.strip() for line in f if line.strip()]
    CheckedSSHClient.known_hosts = known_hosts
    client = CheckedParallelSSHClient(hosts, user="root", pkey=identity, num_retries=1,
                                      timeout=30, pool_size=len(hosts), allow_agent=False,
                                      identity_auth=False)
    errors = []

    def step(name, command, host_args=None, stdin=None):
        output = client.run_command(command, host_args=host_args, stop_on_errors=False)
        if stdin is not None:
            for out in output:
                data = stdin(out.host)
                if out.exception is None and data is not None:
                    out.stdin.write(data)
                    out.stdin.flush()
        client.join(output, consume_output=False)
        for out in output:   # drain, so the exit codes are in
            if out.exception is None:
                for _ in out.stdout:
                    pass
        errors.extend(check(output, name))
        return output

    if job == "true":
        step("true", "true")
        for e in errors:
            print(f"parallel-ssh: {e}", file=sys.stderr)
        return 1 if errors else 0
    step("read-disable", "cat /proc/sys/net/ipv6/conf/all/disable_ipv6")
    if not errors:
        step("sysctl", f"printf '{SYSCTL_CONTENT}' > {SYSCTL_FILE} && sysctl -p {SYSCTL_FILE}")
    if not errors:
        step("forwarding", "sysctl -n net.ipv6.conf.all.forwarding")
    if not errors:
        step("addr", "ip -6 addr show")
    if not errors:
        server = CheckedSSHClient(hosts[0], user="root", pkey=identity, num_retries=1, timeout=30,
                                  allow_agent=False, identity_auth=False)
        out = server.run_command(f"cat {TOKEN_SRC}")
        server.wait_finished(out)
        token = "\n".join(out.stdout) + "\n"
        if out.exit_code != 0 or not token.strip():
            errors.append(f"{hosts[0]}: cannot read {TOKEN_SRC}")
    if not errors:
        # The token goes over stdin (never on a command line); the server itself is left alone.
        write = f"umask 077; mkdir -p /etc/rancher/k3s && IFS= read -r t && printf '%s\\n' \"$t\" > {TOKEN_DEST}"
        step("write-token", "%s", host_args=["true"] + [write] * (len(hosts) - 1),
             stdin=lambda h: None if h == hosts[0] else token)
    for e in errors:
        print(f"parallel-ssh: {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    if len(sys.argv) not in (4, 5) or sys.argv[4:] not in ([], ["prep"], ["true"]):
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
