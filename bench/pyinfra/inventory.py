# pyinfra inventory for a bench lab: the hosts come from HOSTS_FILE (one address a line, the
# server first), the SSH settings from the environment scripts/bench sets.
import os

_env = os.environ
with open(_env["BENCH_HOSTS_FILE"]) as _f:
    _addresses = [line.strip() for line in _f if line.strip()]

_ssh = {
    "ssh_user": "root",
    "ssh_key": _env["BENCH_IDENTITY"],
    "ssh_known_hosts_file": _env["BENCH_KNOWN_HOSTS"],
    "ssh_strict_host_key_checking": "yes",
    "ssh_look_for_keys": False,
    "ssh_allow_agent": False,
}

servers = [(a, dict(_ssh)) for a in _addresses[:1]]
agents = [(a, dict(_ssh)) for a in _addresses[1:]]
