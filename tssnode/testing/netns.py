"""Isolated hosts for a test network: one Linux network namespace per node.

On loopback every node shares one network stack, so a test cannot cut one node off, split
the network in two or make a peer's packets vanish the way a real network does; a kill
or a pause is all it has. With a namespace per node (as CometBFT's e2e runner puts each
node in its own container, and Jepsen each on its own machine), node i has two links:

    root namespace                          namespace <P>n<i> (node i)
    bridge <P>D  (no address)  ─ <P>d<i> ═ data0   10.a.b.i/24     P2P (libp2p) only
    bridge <P>M  10.a.b+1.254  ─ <P>m<i> ═ mgmt0   10.a.b+1.i/24   HTTP API only
    bridges <P>P1, <P>P2, ...  partition sides, made on demand

`<P>` is `tss` and four hex digits, new for every run, and a, b are random, so two runs
(or a crashed one's leftovers) never collide. The test process, in the root namespace,
has an address on the management bridge only: it reaches every node's API whatever
happens to the data network, and the nodes' P2P traffic flows only between namespaces
over the data bridge. The faults touch the data links alone, on the host side:
`disconnect(i)` takes node i's data link down, `connect(i)` brings it up again,
`partition(groups)` moves each group's data links onto a bridge of its own, `heal()`
puts every data link back on the main data bridge, up.

Everything is made with `/usr/sbin/ip` (iproute2) and torn down when the `Hosts` is
closed, even after a failure. A run that crashed before its teardown leaves its
namespaces behind; `sweep_stale()`, run at every start, removes those whose owner (a pid
recorded under `/run/tssnode-netns/`) is gone, and never another live run's.

Where namespaces cannot be made (not root, no iproute2, EPERM in a container), `open_hosts`
falls back to loopback and says so; loopback hosts refuse network faults (`Unsupported`).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import random
import re
import signal
import subprocess
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network
from pathlib import Path
from types import TracebackType

log = logging.getLogger("tssnode.testing.netns")

IP = "/usr/sbin/ip"
#: Every name this module makes: namespaces, host-side veths, bridges (Linux: ≤ 15 chars).
NAME_RE = re.compile(r"^(tss[0-9a-f]{4})(?:n\d+|[dm]\d+|[DM]|P\d+)$")
#: One file per live run, named by its prefix, holding the owner's pid (for the sweep).
OWNERS = Path("/run/tssnode-netns")
#: The node's end of its two links, inside its namespace.
DATA_IF, MGMT_IF = "data0", "mgmt0"
LOOPBACK = "127.0.0.1"


class NetnsError(RuntimeError):
    """An `ip` command failed (with its command line and stderr)."""


class Unsupported(RuntimeError):
    """A network fault these hosts cannot make (loopback has one shared network stack)."""


def ip(*args: str, check: bool = True) -> str:
    """Run `ip ARGS` and return its stdout; NetnsError (with stderr) when it fails."""
    try:
        done = subprocess.run([IP, *args], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NetnsError(f"ip {' '.join(args)}: {exc}") from None
    if check and done.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


# -- names and subnets ---------------------------------------------------------------------


@dataclass(frozen=True)
class Names:
    """The interface, bridge and namespace names of one run, from its prefix."""

    prefix: str

    def netns(self, i: int) -> str:
        return f"{self.prefix}n{i}"

    def data_host(self, i: int) -> str:
        """Node i's data veth, host side (the one the faults act on)."""
        return f"{self.prefix}d{i}"

    def mgmt_host(self, i: int) -> str:
        return f"{self.prefix}m{i}"

    @property
    def data_bridge(self) -> str:
        return f"{self.prefix}D"

    @property
    def mgmt_bridge(self) -> str:
        return f"{self.prefix}M"

    def side_bridge(self, k: int) -> str:
        """The bridge of partition side k (1, 2, ...)."""
        return f"{self.prefix}P{k}"


def new_prefix(rng: random.Random, existing: Collection[str] = ()) -> str:
    """`tss` and four random hex digits that no existing name starts with."""
    for _ in range(1000):
        prefix = f"tss{rng.getrandbits(16):04x}"
        if not any(name.startswith(prefix) for name in existing):
            return prefix
    raise NetnsError("no free name prefix (thousands of stale namespaces?)")


@dataclass(frozen=True)
class Subnets:
    """The run's data and management /24s: 10.a.b.0/24 and 10.a.(b+1).0/24."""

    data: IPv4Network
    mgmt: IPv4Network

    def data_ip(self, i: int) -> str:
        return str(self.data.network_address + i)

    def mgmt_ip(self, i: int) -> str:
        return str(self.mgmt.network_address + i)

    @property
    def root_ip(self) -> str:
        """The test process's own address, on the management bridge."""
        return str(self.mgmt.network_address + 254)


def choose_subnets(rng: random.Random, taken: Iterable[IPv4Network] = ()) -> Subnets:
    """Two adjacent private /24s, 10.a.b.0/24 (data) and 10.a.(b+1).0/24 (management), at
    random a/b so that concurrent runs differ, overlapping none of `taken` (the addresses
    and routes the host already has)."""
    used = list(taken)
    for _ in range(1000):
        a, b = rng.randrange(64, 250), rng.randrange(0, 254, 2)
        data = IPv4Network(f"10.{a}.{b}.0/24")
        mgmt = IPv4Network(f"10.{a}.{b + 1}.0/24")
        if not any(net.overlaps(u) for net in (data, mgmt) for u in used):
            return Subnets(data, mgmt)
    raise NetnsError("no free 10.a.b.0/23 for the test network")


def host_networks() -> list[IPv4Network]:
    """The IPv4 networks the root namespace already uses (its addresses and routes)."""
    nets: list[IPv4Network] = []
    for line in ip("-4", "-o", "addr", "show").splitlines():
        parts = line.split()
        if "inet" in parts:
            nets.append(ipaddress.IPv4Interface(parts[parts.index("inet") + 1]).network)
    for line in ip("-4", "route", "show").splitlines():
        dest = line.split()[0] if line.strip() else ""
        if dest and dest != "default":
            try:
                nets.append(IPv4Network(dest, strict=False))
            except ValueError:
                continue
    return nets


def netns_unavailable() -> str | None:
    """Why namespaces cannot be made here (None: they may be; `ip netns add` decides)."""
    if not os.path.exists(IP):
        return f"{IP} not found (iproute2 is not installed)"
    if os.geteuid() != 0:
        return "not running as root (network namespaces need CAP_NET_ADMIN and CAP_SYS_ADMIN)"
    return None


# -- stale runs ------------------------------------------------------------------------------


def _our_names() -> tuple[list[str], list[str]]:
    """(namespaces, links) in this host whose names this module makes."""
    spaces = [line.split()[0] for line in ip("netns", "list").splitlines() if line.strip()]
    links = []
    for line in ip("-o", "link", "show").splitlines():
        # "12: tss1a2bd1@if2: <...>" → tss1a2bd1
        name = line.split(":", 2)[1].strip().split("@")[0] if ":" in line else ""
        links.append(name)
    return [s for s in spaces if NAME_RE.match(s)], [x for x in links if NAME_RE.match(x)]


def _owner_alive(prefix: str) -> bool:
    try:
        pid = int((OWNERS / prefix).read_text().strip())
    except (OSError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_inside(netns: str) -> None:
    """SIGKILL whatever still runs in one of our namespaces (node processes of that run)."""
    for raw in ip("netns", "pids", netns, check=False).split():
        try:
            os.kill(int(raw), signal.SIGKILL)
        except (ValueError, ProcessLookupError, PermissionError):
            continue


def _remove(spaces: Iterable[str], links: Iterable[str]) -> None:
    """Delete namespaces (after killing what runs in them) and links, ignoring the ones
    already gone: the host side of each veth first (that deletes both ends at once; a
    namespace's own deletion is asynchronous), then the namespaces, then the bridges."""
    spaces, links = list(spaces), list(links)
    for name in spaces:
        _kill_inside(name)
    bridges = [x for x in links if x[7] in "DMP"]
    for name in [x for x in links if x not in bridges]:
        ip("link", "del", name, check=False)
    for name in spaces:
        ip("netns", "del", name, check=False)
    for name in bridges:
        ip("link", "del", name, check=False)


def sweep_stale() -> list[str]:
    """Remove the namespaces, veths and bridges of runs whose owner process is gone (a run
    that crashed before its teardown); another live run's are left alone. Returns the
    names removed."""
    spaces, links = _our_names()
    prefixes = {m.group(1) for m in map(NAME_RE.match, spaces + links) if m}
    stale = {p for p in prefixes if not _owner_alive(p)}
    gone_spaces = [s for s in spaces if s[:7] in stale]
    gone_links = [x for x in links if x[:7] in stale]
    if gone_spaces or gone_links:
        log.warning("removing a crashed run's test network: %s", " ".join(gone_spaces + gone_links))
        _remove(gone_spaces, gone_links)
    for prefix in stale:
        (OWNERS / prefix).unlink(missing_ok=True)
    return gone_spaces + gone_links


# -- hosts -----------------------------------------------------------------------------------


class Hosts:
    """Where each node of a test network runs and listens, and the network faults."""

    mode = "loopback"

    def __init__(self, n: int, reason: str = "") -> None:
        self.n = n
        #: why these hosts are on loopback ("" when namespaces are in use)
        self.reason = reason

    @property
    def supports_network_faults(self) -> bool:
        return self.mode == "netns"

    def p2p_host(self, i: int) -> str:
        """The address node i listens on for P2P (and the genesis lists)."""
        return LOOPBACK

    def api_host(self, i: int) -> str:
        return LOOPBACK

    def command_prefix(self, i: int) -> list[str]:
        """argv before node i's command (e.g. `ip netns exec NAME`)."""
        return []

    def _unsupported(self, what: str) -> Unsupported:
        return Unsupported(
            f"{what} needs network namespaces; this network is on loopback ({self.reason})"
        )

    def disconnect(self, i: int) -> None:
        raise self._unsupported("disconnect")

    def connect(self, i: int) -> None:
        raise self._unsupported("connect")

    def partition(self, groups: Sequence[Sequence[int]]) -> None:
        raise self._unsupported("partition")

    def heal(self) -> None:
        """Loopback has nothing to heal."""

    def close(self) -> None:
        """Loopback has nothing to tear down."""

    def __enter__(self) -> Hosts:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class NetnsHosts(Hosts):
    """n namespaces with a data and a management link each (module docstring)."""

    mode = "netns"

    def __init__(self, n: int, rng: random.Random | None = None) -> None:
        super().__init__(n)
        if not 1 <= n <= 250:
            raise ValueError("a namespaced network has 1 to 250 nodes")
        rng = rng or random.Random()
        sweep_stale()
        spaces, links = _our_names()
        self.names = Names(new_prefix(rng, spaces + links))
        self.subnets = choose_subnets(rng, host_networks())
        self._sides: set[str] = set()
        self._made_spaces: list[str] = []
        self._made_links: list[str] = []
        try:
            OWNERS.mkdir(parents=True, exist_ok=True)
            (OWNERS / self.names.prefix).write_text(str(os.getpid()))
        except OSError as exc:  # the sweep then treats this run as stale: only a warning
            log.warning("cannot record the run's owner under %s: %s", OWNERS, exc)
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    def _build(self) -> None:
        names, nets = self.names, self.subnets
        for bridge in (names.data_bridge, names.mgmt_bridge):
            ip("link", "add", bridge, "type", "bridge")
            self._made_links.append(bridge)
            ip("link", "set", bridge, "up")
        ip("addr", "add", f"{nets.root_ip}/{nets.mgmt.prefixlen}", "dev", names.mgmt_bridge)
        for i in range(1, self.n + 1):
            ns = names.netns(i)
            ip("netns", "add", ns)
            self._made_spaces.append(ns)
            ip("-n", ns, "link", "set", "lo", "up")
            links = (
                (names.data_host(i), DATA_IF, names.data_bridge, nets.data_ip(i), nets.data),
                (names.mgmt_host(i), MGMT_IF, names.mgmt_bridge, nets.mgmt_ip(i), nets.mgmt),
            )
            for host_if, inner_if, bridge, addr, net in links:
                ip("link", "add", host_if, "type", "veth", "peer", "name", inner_if, "netns", ns)
                self._made_links.append(host_if)
                ip("link", "set", host_if, "master", bridge)
                ip("link", "set", host_if, "up")
                ip("-n", ns, "addr", "add", f"{addr}/{net.prefixlen}", "dev", inner_if)
                ip("-n", ns, "link", "set", inner_if, "up")
        log.info(
            "test network %s: data %s, management %s (this process at %s)",
            names.prefix,
            nets.data,
            nets.mgmt,
            nets.root_ip,
        )

    def p2p_host(self, i: int) -> str:
        return self.subnets.data_ip(i)

    def api_host(self, i: int) -> str:
        return self.subnets.mgmt_ip(i)

    def command_prefix(self, i: int) -> list[str]:
        return [IP, "netns", "exec", self.names.netns(i)]

    def _check(self, i: int) -> None:
        if not 1 <= i <= self.n:
            raise ValueError(f"no node {i} (nodes are 1..{self.n})")

    def disconnect(self, i: int) -> None:
        """Node i's data link down: its packets go nowhere, no RST, as a pulled cable."""
        self._check(i)
        ip("link", "set", self.names.data_host(i), "down")

    def connect(self, i: int) -> None:
        self._check(i)
        ip("link", "set", self.names.data_host(i), "up")

    def partition(self, groups: Sequence[Sequence[int]]) -> None:
        """Each group's data links onto a bridge of its own (nodes in no group stay on the
        main data bridge, together); a link's up/down state is left as it is."""
        seen: set[int] = set()
        for group in groups:
            for i in group:
                self._check(i)
                if i in seen:
                    raise ValueError(f"node {i} is in two partition groups")
                seen.add(i)
        for i in range(1, self.n + 1):
            if i not in seen:
                ip("link", "set", self.names.data_host(i), "master", self.names.data_bridge)
        for k, group in enumerate(groups, start=1):
            bridge = self.names.side_bridge(k)
            if bridge not in self._sides:
                ip("link", "add", bridge, "type", "bridge")
                self._sides.add(bridge)
                self._made_links.append(bridge)
                ip("link", "set", bridge, "up")
            for i in group:
                ip("link", "set", self.names.data_host(i), "master", bridge)

    def heal(self) -> None:
        """Every data link back on the main data bridge, and up."""
        for i in range(1, self.n + 1):
            host_if = self.names.data_host(i)
            ip("link", "set", host_if, "master", self.names.data_bridge)
            ip("link", "set", host_if, "up")

    def close(self) -> None:
        """Tear down everything this run made (after killing anything left inside)."""
        spaces, links = self._made_spaces, self._made_links
        self._made_spaces, self._made_links = [], []
        try:
            _remove(spaces, links)
        finally:
            (OWNERS / self.names.prefix).unlink(missing_ok=True)


def open_hosts(n: int, network: str = "auto", rng: random.Random | None = None) -> Hosts:
    """Hosts for n nodes: namespaces (`network="netns"`, or "auto" when they can be made),
    else loopback. "auto" falls back to loopback and says so (a WARNING and a printed
    line), since a test of partitions then cannot run; "netns" raises instead."""
    if network not in ("auto", "netns", "loopback"):
        raise ValueError(f"network must be auto, netns or loopback, not {network!r}")
    if network == "loopback":
        return Hosts(n, "loopback asked for")
    reason = netns_unavailable()
    if reason is None:
        try:
            return NetnsHosts(n, rng)
        except NetnsError as exc:
            reason = str(exc)
    if network == "netns":
        raise NetnsError(f"cannot make network namespaces: {reason}")
    message = f"network namespaces unavailable ({reason}): the nodes run on loopback 127.0.0.1"
    log.warning("%s", message)
    print(f"tssnode faults: {message}; partition and disconnect are unsupported", flush=True)
    return Hosts(n, reason)
