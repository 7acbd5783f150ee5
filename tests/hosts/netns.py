"""Hosts of their own on one machine: Linux network namespaces joined by a bridge.

A `Network` is a bridge `sqbr<tag>` in the root namespace holding 10.231.N.1/24 (N picked
per run among the /24s of 10.231.0.0/16 no interface here uses) and one namespace
`sq<tag>-<name>` per host, each with a veth `eth0` at 10.231.N.<octet> whose other end
`sq<tag>h<i>` is a port of the bridge. The namespaces have no default route and the root
namespace does not forward, so nothing leaves the bridge. The tag is random per run, so
parallel runs never share a name; everything made here is removed by `close()`, which an
atexit hook also calls (a run that dies in the middle leaves nothing behind).

The faults a nemesis chooses are plain iproute2, which every Linux with namespaces has:

- kill a host: SIGKILL every pid `ip netns pids` names;
- cut two hosts apart: each side gets a permanent neighbour entry for the other that
  points at a MAC no port owns, so frames leave but nobody accepts them. Open connections
  stall and new ones time out, as across a real partition (a blackhole route would fail
  connects at once with EINVAL, which no real network does); healing deletes the entries
  and ARP finds the real MAC again;
- a slow or lossy link: a `tc` qdisc on both ends of the host's link (`shape`), when the
  kernel has that qdisc (`qdisc_available`): `netem` delays and drops at random; `tbf`
  narrows the link to a rate and drops what overflows its short queue (tail drop). A
  kernel without sch_netem cannot be made to delay or drop at random by iproute2 alone;
  tbf is in nearly every kernel.

Names: `name_hosts` writes /etc/netns/NS/hosts, which `ip netns exec` bind-mounts over
/etc/hosts for the command it runs, so programs that need host names rather than
addresses (Erlang's distribution: `rabbit@q1`) resolve them inside every namespace.
"""

from __future__ import annotations

import atexit
import contextlib
import ipaddress
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

SPACE = ipaddress.ip_network("10.231.0.0/16")
ETC_NETNS = Path("/etc/netns")
NOWHERE_MAC = "02:00:5e:00:de:ad"  # locally administered, owned by no port of the bridge


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def missing_capability() -> str | None:
    """Why this machine cannot build a Network (None when it can)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"{tool} (iproute2) not found"
    probe = f"sqprobe{secrets.token_hex(3)}"
    made = ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"ip netns add failed: {made.stderr.strip()}"
    ip("netns", "del", probe, check=False)
    return None


def qdisc_available(kind: str, *spec: str) -> bool:
    """Whether the kernel has the qdisc `kind` (tried with `spec` on a throw-away namespace's lo)."""
    ns = f"sqqdisc{secrets.token_hex(3)}"
    ip("netns", "add", ns)
    try:
        ip("-n", ns, "link", "set", "lo", "up")
        tried = subprocess.run(["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "lo", "root", kind, *spec],
                               capture_output=True, text=True)
        return tried.returncode == 0
    finally:
        ip("netns", "del", ns, check=False)


@dataclass
class Host:
    name: str
    ns: str
    address: str
    port: str  # the bridge port (root side of the veth): the link's far end, where a qdisc shapes what it receives

    def exec_argv(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.ns, *argv]

    def pids(self) -> list[int]:
        out = ip("netns", "pids", self.ns, check=False).stdout
        return [int(p) for p in out.split()]

    def can_connect(self, address: str, port: int, timeout: float = 1.0) -> bool:
        """A TCP connect from inside this host (the proof a partition landed, or healed)."""
        code = (f"import socket\ntry:\n socket.create_connection(({address!r},{port}),timeout={timeout}).close()\n"
                f"except OSError:\n raise SystemExit(1)")
        return subprocess.run(self.exec_argv(["python3", "-c", code]), capture_output=True).returncode == 0


@dataclass
class Network:
    tag: str = field(default_factory=lambda: secrets.token_hex(3))
    hosts: dict[str, Host] = field(default_factory=dict)
    cuts: set[tuple[str, str]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.bridge = f"sqbr{self.tag}"
        self.subnet = _free_subnet()
        self.gateway = str(self.subnet.network_address + 1)  # the bridge's own address: the driver
        self._closed = False
        atexit.register(self.close)
        ip("link", "add", self.bridge, "type", "bridge")
        ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")

    def add(self, name: str, octet: int) -> Host:
        index = len(self.hosts)
        host = Host(name, f"sq{self.tag}-{name}", str(self.subnet.network_address + octet), f"sq{self.tag}h{index}")
        peer = f"sq{self.tag}p{index}"
        ip("netns", "add", host.ns)
        self.hosts[name] = host
        ip("link", "add", host.port, "type", "veth", "peer", "name", peer)
        ip("link", "set", peer, "netns", host.ns)
        ip("-n", host.ns, "link", "set", peer, "name", "eth0")
        ip("-n", host.ns, "addr", "add", f"{host.address}/24", "dev", "eth0")
        for dev in ("lo", "eth0"):
            ip("-n", host.ns, "link", "set", dev, "up")
        ip("link", "set", host.port, "master", self.bridge)
        ip("link", "set", host.port, "up")
        return host

    def name_hosts(self, names: Iterable[str]) -> None:
        """Every host resolves each of `names` (hosts of this network) to its address, and
        the machine's own host name to its own address (an Erlang CLI node names itself after it)."""
        listed = "".join(f"{self.hosts[n].address} {n}\n" for n in names)
        for host in self.hosts.values():
            etc = ETC_NETNS / host.ns
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "hosts").write_text(f"127.0.0.1 localhost\n{host.address} {socket.gethostname()}\n{listed}")

    # -- faults ---------------------------------------------------------------------------

    def kill(self, name: str) -> list[int]:
        """SIGKILL every process of the host at once; returns the pids that were there."""
        pids = self.hosts[name].pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return pids

    def cut(self, side: list[str], other: list[str]) -> None:
        """Partition: no frame between a host of `side` and a host of `other` (or the driver,
        named "driver") is accepted, both ways."""
        for a in side:
            for b in other:
                self._poison(a, b)
                self._poison(b, a)

    def heal(self) -> None:
        for a, b in sorted(self.cuts):
            ns, address, dev = self._where(a, b)
            if ns:
                ip("-n", ns, "neigh", "del", address, "dev", dev, check=False)
            else:
                ip("neigh", "del", address, "dev", dev, check=False)
        self.cuts.clear()

    def shape(self, name: str, kind: str, *spec: str) -> None:
        """`tc qdisc KIND SPEC` on both directions of the host's link: its eth0 shapes what
        it sends, its bridge port what it receives."""
        host = self.hosts[name]
        subprocess.run(["tc", "qdisc", "replace", "dev", host.port, "root", kind, *spec], check=True)
        subprocess.run(host.exec_argv(["tc", "qdisc", "replace", "dev", "eth0", "root", kind, *spec]), check=True)

    def unshape(self, name: str) -> str:
        """Remove the qdiscs `shape` added; returns `tc -s qdisc show` of both ends, read
        just before (their sent, dropped and overlimit counters: the proof the shaping bit)."""
        host = self.hosts[name]
        shown = (subprocess.run(["tc", "-s", "qdisc", "show", "dev", host.port], capture_output=True,
                                text=True).stdout
                 + subprocess.run(host.exec_argv(["tc", "-s", "qdisc", "show", "dev", "eth0"]), capture_output=True,
                                  text=True).stdout)
        subprocess.run(["tc", "qdisc", "del", "dev", host.port, "root"], capture_output=True)
        subprocess.run(host.exec_argv(["tc", "qdisc", "del", "dev", "eth0", "root"]), capture_output=True)
        return shown

    def _where(self, a: str, b: str) -> tuple[str | None, str, str]:
        """(namespace of a or None for the driver, b's address, a's device)."""
        address = self.gateway if b == "driver" else self.hosts[b].address
        if a == "driver":
            return None, address, self.bridge
        return self.hosts[a].ns, address, "eth0"

    def _poison(self, a: str, b: str) -> None:
        ns, address, dev = self._where(a, b)
        args = ["neigh", "replace", address, "lladdr", NOWHERE_MAC, "nud", "permanent", "dev", dev]
        ip(*(["-n", ns] if ns else []), *args)
        self.cuts.add((a, b))

    # -- teardown --------------------------------------------------------------------------

    def close(self) -> None:
        """Kill every process of every host, delete the namespaces (their veths go with
        them) and the bridge. Idempotent; also runs at exit."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self.heal()
        for host in self.hosts.values():
            self.kill(host.name)
        for host in self.hosts.values():
            ip("netns", "del", host.ns, check=False)
            ip("link", "del", host.port, check=False)
            shutil.rmtree(ETC_NETNS / host.ns, ignore_errors=True)
        ip("link", "del", self.bridge, check=False)

    def leftovers(self) -> list[str]:
        """Anything of this run still present (empty after close())."""
        names = ip("netns", "list").stdout + ip("-br", "link").stdout
        names += " " + " ".join(p.name for p in ETC_NETNS.glob(f"sq{self.tag}-*"))
        return sorted({word for word in names.split() if self.tag in word})


def _free_subnet() -> ipaddress.IPv4Network:
    used = {ipaddress.ip_interface(a).network for a in ip("-4", "-br", "addr").stdout.split() if "/" in a}
    subnets = list(SPACE.subnets(new_prefix=24))[1:-1]
    random.shuffle(subnets)
    for subnet in subnets:
        if not any(subnet.overlaps(u) for u in used):
            return subnet
    raise RuntimeError("no free /24 in 10.231.0.0/16")

