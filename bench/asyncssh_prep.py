#!/usr/bin/env python3
"""The kernel-prep job with asyncssh: one connection per host, every host at once.

Usage: asyncssh_prep.py HOSTS_FILE IDENTITY KNOWN_HOSTS [prep|true]

The job is the kernel prep (the default) or `true` on every host. The first address in HOSTS_FILE is the server that holds the token. Host keys are checked
against KNOWN_HOSTS; an unknown or changed key fails that host. Exit 0 when every host did
every step.
"""
import asyncio
import sys

import asyncssh

SYSCTL_FILE = "/etc/sysctl.d/90-fleet-ipv6.conf"
SYSCTL_CONTENT = (
    "net.ipv6.conf.all.disable_ipv6 = 0\n"
    "net.ipv6.conf.all.forwarding = 1\n"
    "net.ipv6.conf.default.forwarding = 1\n"
)
TOKEN_SRC = "/var/lib/rancher/k3s/server/node-token"
TOKEN_DEST = "/etc/rancher/k3s/token"


async def prep(conn):
    await conn.run("cat /proc/sys/net/ipv6/conf/all/disable_ipv6", check=True)
    await conn.run(f"cat > {SYSCTL_FILE} && sysctl -p {SYSCTL_FILE}", input=SYSCTL_CONTENT, check=True)
    await conn.run("sysctl -n net.ipv6.conf.all.forwarding", check=True)
    await conn.run("ip -6 addr show", check=True)


async def put_token(conn, token):
    # Over stdin, so the token never shows in a process list.
    await conn.run(f"umask 077; mkdir -p /etc/rancher/k3s && cat > {TOKEN_DEST}", input=token, check=True)


async def main(hosts_file, identity, known_hosts, job="prep"):
    with open(hosts_file) as f:
        hosts = [line.strip() for line in f if line.strip()]

    def connect(host):
        return asyncssh.connect(host, username="root", client_keys=[identity],
                                known_hosts=known_hosts, agent_path=None,
                                connect_timeout=600)  # generous: the peer must finish to be timed

    results = await asyncio.gather(*(connect(h) for h in hosts), return_exceptions=True)
    failed = [(h, r) for h, r in zip(hosts, results) if isinstance(r, BaseException)]
    conns = [r for r in results if not isinstance(r, BaseException)]
    try:
        if not failed and job == "true":
            results = await asyncio.gather(*(c.run("true", check=True) for c in conns), return_exceptions=True)
            failed = [(h, r) for h, r in zip(hosts, results) if isinstance(r, BaseException)]
        elif not failed:
            results = await asyncio.gather(*(prep(c) for c in conns), return_exceptions=True)
            failed = [(h, r) for h, r in zip(hosts, results) if isinstance(r, BaseException)]
        if not failed and job == "prep":
            token = (await conns[0].run(f"cat {TOKEN_SRC}", check=True)).stdout
            results = await asyncio.gather(*(put_token(c, token) for c in conns[1:]),
                                           return_exceptions=True)
            failed = [(h, r) for h, r in zip(hosts[1:], results) if isinstance(r, BaseException)]
    finally:
        for c in conns:
            c.close()
        await asyncio.gather(*(c.wait_closed() for c in conns), return_exceptions=True)
    for h, err in failed:
        print(f"asyncssh: {h}: {err}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) not in (4, 5) or sys.argv[4:] not in ([], ["prep"], ["true"]):
        sys.exit(__doc__)
    sys.exit(asyncio.run(main(*sys.argv[1:])))
