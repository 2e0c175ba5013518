# The kernel-prep job as a pyinfra deploy: facts first, then only what differs.
import os

from pyinfra import host, inventory
from pyinfra.operations import files, server

SYSCTL_FILE = "/etc/sysctl.d/90-fleet-ipv6.conf"
TOKEN_SRC = "/var/lib/rancher/k3s/server/node-token"
TOKEN_DEST = "/etc/rancher/k3s/token"
LOCAL_TOKEN = os.environ["BENCH_TOKEN_FILE"]   # in a directory only its owner can read

server.shell(name="Read disable_ipv6", commands=["cat /proc/sys/net/ipv6/conf/all/disable_ipv6"])

for key, value in (
    ("net.ipv6.conf.all.disable_ipv6", 0),
    ("net.ipv6.conf.all.forwarding", 1),
    ("net.ipv6.conf.default.forwarding", 1),
):
    server.sysctl(name=f"Set {key}", key=key, value=value, persist=True, persist_file=SYSCTL_FILE)

server.shell(name="Read forwarding back", commands=["sysctl -n net.ipv6.conf.all.forwarding"])
server.shell(name="Addresses", commands=["ip -6 addr show"])

# The token goes through the control machine: downloaded from the first server into a private
# local file, then uploaded to each agent (pyinfra runs one operation on every host before the
# next, so the download is done before any upload starts).
if "servers" in host.groups and host == inventory.get_group("servers")[0]:
    files.get(name="Fetch the join token", src=TOKEN_SRC, dest=LOCAL_TOKEN, force=True)

if "agents" in host.groups:
    files.put(name="Join token", src=LOCAL_TOKEN, dest=TOKEN_DEST, mode="600", assume_exists=True)
