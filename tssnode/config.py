"""The node's TOML config file, parsed (stdlib `tomllib`) into typed, frozen sections.

```toml
[node]
network_id = "local-4"              # letters, digits, '.', '_', '-'
data_dir = "data/node1"             # relative paths are relative to this file
# workers = 2                       # threads for protocol maths (default: the CPU count)

[net]
listen = "/ip4/127.0.0.1/tcp/4001"
bootstrap = ["/ip4/127.0.0.1/tcp/4002/p2p/12D3KooW…"]
# allowed_peers = ["12D3KooW…"]     # absent: the ledger's validators (tssnode run)
# followers = ["12D3KooW…"]         # may read the chain (status, blocks), nothing else
# newcomer_slots = 4                # unknown peers let in at a time, chain reads only
# newcomer_seconds = 300            # ...each for this long, once (0 slots: none at all)
# handshake_timeout = 5             # an inbound connection's Noise + muxer handshake
# tuning keys (timeouts, limits): see `NetConfig`

[api]
listen = "127.0.0.1:8600"           # host:port

[ledger]                            # all optional
genesis = "genesis.toml"            # absent or missing: learnt from the bootstrap peers
chain_id = "<64 hex>"               # then only a genesis with this hash is accepted
stall_after = 30                    # seconds with requests waiting and no block: "stalled"
view_timeout = 10                   # PBFT's base view-change timeout (doubled per failure)

[keys]                              # all optional: see `KeysConfig`
tier = "standard"
presign_pool = 4

[bridge.bitcoin]                    # optional: the Bitcoin node this validator watches
url = "http://127.0.0.1:18443"      # Bitcoin Core's JSON-RPC (regtest port shown)
cookie_file = "~/.bitcoin/regtest/.cookie"   # or: user = "…" and password_file = "…"

[bridge.evm]                        # optional: the EVM node this validator reads the gateway on
url = "http://127.0.0.1:8545"       # Ethereum's JSON-RPC (anvil's port shown)

[vault]                             # where the passphrase of the sealed secrets comes from
passphrase_file = "/run/secrets/tssnode-node1"   # or:
# passphrase_command = ["pass", "show", "tssnode/node1"]   # (or one string, split like a shell)
# command_timeout = 30              # seconds the command may take
# insecure_local_key = false        # true: allow a key file in the data directory
```

The vault passphrase is taken, in order, from the `TSSNODE_PASSPHRASE` environment
variable, `[vault] passphrase_file`, or `[vault] passphrase_command` (see `VaultConfig`
and `tssnode.node.vaultkey`). A key file inside the data directory is refused unless
`insecure_local_key = true`, which is for throw-away local networks only: then, without
any of the three, the node keeps a random key in `<data_dir>/vault.key` and says so.

Every problem is a `ConfigError` naming the file and the dotted key (`net.bootstrap[1]`);
unknown sections and keys are errors too, so a typo never silently becomes a default.

Extending: a new section is a frozen dataclass with a `_parse(table)` classmethod that
reads its keys with `table.take(...)` (see `ApiConfig`), plus one field on `NodeConfig`
and one line in `NodeConfig.from_mapping`. A new key is one `take` call and one field.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import re
import shlex
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from multiaddr import Multiaddr

from tssnode.crypto.params import TIERS
from tssnode.errors import TssError
from tssnode.net import peerid
from tssnode.net.errors import InvalidPeerId

T = TypeVar("T")

_NETWORK_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigError(TssError):
    """A node config that cannot be used; `key` is the dotted name of the bad field."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        where = f"{source}: {key}" if key else source
        super().__init__(f"{where}: {problem}")
        self.source = source
        self.key = key
        self.problem = problem


_MISSING: Any = object()


class Table:
    """One TOML table being read: typed `take`s, then `finish` refuses leftover keys."""

    def __init__(self, data: Any, source: str, prefix: str, base_dir: Path) -> None:
        if not isinstance(data, dict):
            raise ConfigError(source, prefix, "must be a table")
        self.data: dict[str, Any] = data
        self.source = source
        self.prefix = prefix
        self.base_dir = base_dir
        self._taken: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def error(self, name: str, problem: str) -> ConfigError:
        return ConfigError(self.source, self.key(name), problem)

    def take(self, name: str, parse: Callable[[Table, str, Any], T], default: Any = _MISSING) -> T:
        """Read key `name` with `parse(table, key, raw)`; a missing key is an error unless
        a default is given."""
        self._taken.add(name)
        if name not in self.data:
            if default is _MISSING:
                raise self.error(name, "is required")
            value: T = default
            return value
        return parse(self, name, self.data[name])

    def table(self, name: str) -> Table:
        """A sub-table (an absent one reads as empty, so all its keys take defaults)."""
        self._taken.add(name)
        return Table(self.data.get(name, {}), self.source, self.key(name), self.base_dir)

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self._taken)
        if unknown:
            raise self.error(unknown[0], "unknown key (misspelt?)")


# -- value parsers: (table, key, raw) -> value ------------------------------------------------


def text(t: Table, k: str, raw: Any) -> str:
    if not isinstance(raw, str):
        raise t.error(k, f"must be a string, not {type(raw).__name__}")
    return raw


def network_id(t: Table, k: str, raw: Any) -> str:
    value = text(t, k, raw)
    if not _NETWORK_ID.fullmatch(value):
        raise t.error(k, "1–64 characters: letters, digits, '.', '_', '-' (not first)")
    return value


def directory(t: Table, k: str, raw: Any) -> Path:
    value = text(t, k, raw)
    if not value.strip():
        raise t.error(k, "must not be empty")
    path = Path(value).expanduser()
    return path if path.is_absolute() else (t.base_dir / path)


def integer(low: int, high: int) -> Callable[[Table, str, Any], int]:
    def parse(t: Table, k: str, raw: Any) -> int:
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise t.error(k, f"must be an integer, not {type(raw).__name__}")
        if not low <= raw <= high:
            raise t.error(k, f"must be between {low} and {high}")
        return raw

    return parse


def boolean(t: Table, k: str, raw: Any) -> bool:
    if not isinstance(raw, bool):
        raise t.error(k, f"must be true or false, not {type(raw).__name__}")
    return raw


def seconds(low: float, high: float) -> Callable[[Table, str, Any], float]:
    """A duration in seconds, `low < value <= high` (integers accepted)."""

    def parse(t: Table, k: str, raw: Any) -> float:
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise t.error(k, f"must be a number of seconds, not {type(raw).__name__}")
        value = float(raw)
        if not math.isfinite(value) or not low < value <= high:
            raise t.error(k, f"must be more than {low:g} and at most {high:g} seconds")
        return value

    return parse


def choice(options: Sequence[str]) -> Callable[[Table, str, Any], str]:
    def parse(t: Table, k: str, raw: Any) -> str:
        value = text(t, k, raw)
        if value.upper() not in options:
            raise t.error(k, f"must be one of {', '.join(options)}")
        return value.upper()

    return parse


def list_of(item: Callable[[Table, str, Any], T]) -> Callable[[Table, str, Any], tuple[T, ...]]:
    def parse(t: Table, k: str, raw: Any) -> tuple[T, ...]:
        if not isinstance(raw, list):
            raise t.error(k, f"must be a list, not {type(raw).__name__}")
        values = tuple(item(t, f"{k}[{i}]", v) for i, v in enumerate(raw))
        for i, v in enumerate(values):
            if v in values[:i]:
                raise t.error(f"{k}[{i}]", "appears twice")
        return values

    return parse


def peer_id(t: Table, k: str, raw: Any) -> str:
    value = text(t, k, raw)
    try:
        peerid.from_text(value)
    except InvalidPeerId as exc:
        raise t.error(k, f"not a peer id: {exc}") from None
    return value


def key_peer_id(public_key_hex: str) -> str | None:
    """The peer id ('12D3KooW…') of an Ed25519 identity key in hex, as a genesis lists a
    validator's; None if it is not 32 bytes of hex. (The console names peers by it: this
    module is its way to the net layer's codec, `tssnode.net.peerid`.)"""
    try:
        return peerid.to_text(peerid.from_public_key(bytes.fromhex(public_key_hex)))
    except (ValueError, InvalidPeerId):
        return None


def _multiaddr(t: Table, k: str, raw: Any) -> tuple[str, Multiaddr, list[str]]:
    value = text(t, k, raw)
    try:
        addr = Multiaddr(value)
    except Exception as exc:  # the multiaddr package raises several types
        raise t.error(k, f"not a multiaddr: {exc}") from None
    return value, addr, [p.name for p in addr.protocols()]


def listen_addr(t: Table, k: str, raw: Any) -> str:
    """A TCP listen multiaddr: /ip4/<addr>/tcp/<port> or /ip6/<addr>/tcp/<port>."""
    _, addr, names = _multiaddr(t, k, raw)
    if names not in (["ip4", "tcp"], ["ip6", "tcp"]):
        raise t.error(k, "must be /ip4/<address>/tcp/<port> or /ip6/<address>/tcp/<port>")
    return str(addr)


def peer_addr(t: Table, k: str, raw: Any) -> str:
    """A dialable peer multiaddr with its id: /ip4/<addr>/tcp/<port>/p2p/<peer id>."""
    _, addr, names = _multiaddr(t, k, raw)
    if names not in (["ip4", "tcp", "p2p"], ["ip6", "tcp", "p2p"]):
        raise t.error(k, "must be /ip4/<address>/tcp/<port>/p2p/<peer id> (ip6 also accepted)")
    host = addr.value_for_protocol(names[0])
    if host is None or ipaddress.ip_address(host).is_unspecified:
        raise t.error(k, "an unspecified address (0.0.0.0, ::) cannot be dialled")
    if addr.value_for_protocol("tcp") in ("0", 0):
        raise t.error(k, "port 0 cannot be dialled")
    peer_id(t, k, addr.value_for_protocol("p2p"))
    return str(addr)


def host_port(t: Table, k: str, raw: Any) -> tuple[str, int]:
    """`host:port` with an IP literal or `localhost` (IPv6 in brackets: `[::1]:8600`)."""
    value = text(t, k, raw)
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([^:\[\]]+):(\d{1,5})", value)
    if not match:
        raise t.error(k, "must be host:port (IPv6 as [addr]:port)")
    host = match.group(1) or match.group(3)
    port = int(match.group(2) or match.group(4))
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise t.error(k, f"{host!r} is not an IP address or 'localhost'") from None
    if not 0 <= port <= 65535:
        raise t.error(k, "port must be between 0 and 65535")
    return host, port


# -- sections --------------------------------------------------------------------------------


def default_workers() -> int:
    """[node] workers when absent: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class NodeSection:
    """[node]: which network this node belongs to, where it keeps its state, and how many
    threads do its protocol maths: a round's per-peer proofs and the checks of its
    incoming messages run on that many threads at once (gmpy2 releases the GIL there)."""

    network_id: str
    data_dir: Path
    workers: int = field(default_factory=lambda: default_workers())

    @classmethod
    def _parse(cls, t: Table) -> NodeSection:
        section = cls(
            network_id=t.take("network_id", network_id),
            data_dir=t.take("data_dir", directory),
            workers=t.take("workers", integer(1, 256), default_workers()),
        )
        t.finish()
        return section


@dataclass(frozen=True)
class NetConfig:
    """[net]: the libp2p layer: addresses, admission, and the timeouts and limits."""

    listen: str
    bootstrap: tuple[str, ...] = ()
    #: Peer ids admitted as validators; None: any authenticated peer (bare net layer).
    #: `tssnode run` admits the ledger's validators; this list, if set, narrows them.
    allowed_peers: tuple[str, ...] | None = None
    #: Peer ids that may connect and read the chain (status, blocks), nothing else.
    followers: tuple[str, ...] = ()
    #: Unknown peers admitted at a time for chain reads only (a new node's bootstrap:
    #: genesis and catch-up before it is voted in); 0 refuses every unknown peer.
    newcomer_slots: int = 4
    #: How long one newcomer may stay, from its first connection (once per peer id).
    newcomer_seconds: float = 300.0
    #: An inbound connection must finish its Noise and muxer handshake within this.
    handshake_timeout: float = 5.0
    #: Addresses to tell peers about instead of the listen address (NAT, 0.0.0.0).
    announce: tuple[str, ...] = ()
    #: Largest frame on our own stream protocols (a direct envelope with its header).
    max_frame_bytes: int = 4 * 1024 * 1024
    #: Timeout of every single stream operation (open, one frame read, one write).
    op_timeout: float = 10.0
    #: Default deadline of a direct send, resends included.
    send_deadline: float = 30.0
    #: Liveness: ping period, ping timeout, and failed pings before a peer is dropped.
    ping_interval: float = 5.0
    ping_timeout: float = 5.0
    ping_failures: int = 3
    #: Redial backoff: first retry delay and the cap.
    redial_min: float = 0.25
    redial_max: float = 5.0
    #: Peer exchange refresh period.
    pex_interval: float = 10.0
    #: A connected peer not ready for gossip after this long is disconnected and redialled.
    ready_timeout: float = 15.0
    #: How long `collect_broadcasts` waits for gossip before fetching from peers.
    fetch_grace: float = 1.0
    #: Level at which py-libp2p's own log records are passed into ours.
    libp2p_log_level: str = "WARNING"

    @classmethod
    def _parse(cls, t: Table) -> NetConfig:
        d = cls.__dataclass_fields__
        section = cls(
            listen=t.take("listen", listen_addr),
            bootstrap=t.take("bootstrap", list_of(peer_addr), ()),
            allowed_peers=t.take("allowed_peers", list_of(peer_id), None),
            followers=t.take("followers", list_of(peer_id), ()),
            newcomer_slots=t.take("newcomer_slots", integer(0, 1024), d["newcomer_slots"].default),
            newcomer_seconds=t.take(
                "newcomer_seconds", seconds(0, 7 * 86400), d["newcomer_seconds"].default
            ),
            handshake_timeout=t.take(
                "handshake_timeout", seconds(0, 600), d["handshake_timeout"].default
            ),
            announce=t.take("announce", list_of(listen_addr), ()),
            max_frame_bytes=t.take(
                "max_frame_bytes",
                integer(64 * 1024, 64 * 1024 * 1024),
                d["max_frame_bytes"].default,
            ),
            op_timeout=t.take("op_timeout", seconds(0, 600), d["op_timeout"].default),
            send_deadline=t.take("send_deadline", seconds(0, 3600), d["send_deadline"].default),
            ping_interval=t.take("ping_interval", seconds(0, 600), d["ping_interval"].default),
            ping_timeout=t.take("ping_timeout", seconds(0, 600), d["ping_timeout"].default),
            ping_failures=t.take("ping_failures", integer(1, 100), d["ping_failures"].default),
            redial_min=t.take("redial_min", seconds(0, 600), d["redial_min"].default),
            redial_max=t.take("redial_max", seconds(0, 3600), d["redial_max"].default),
            pex_interval=t.take("pex_interval", seconds(0, 3600), d["pex_interval"].default),
            ready_timeout=t.take("ready_timeout", seconds(0, 3600), d["ready_timeout"].default),
            fetch_grace=t.take("fetch_grace", seconds(0, 600), d["fetch_grace"].default),
            libp2p_log_level=t.take(
                "libp2p_log_level", choice(_LOG_LEVELS), d["libp2p_log_level"].default
            ),
        )
        if section.redial_max < section.redial_min:
            raise t.error("redial_max", "must not be smaller than redial_min")
        if section.send_deadline < section.op_timeout:
            raise t.error("send_deadline", "must not be smaller than op_timeout")
        t.finish()
        return section


@dataclass(frozen=True)
class ApiConfig:
    """[api]: where the control API listens (loopback by default), and how much of the
    node it may take (`tssnode.api.app.Limits`: the API shares the node's event loop with
    gossip and consensus, so a flood of requests gets 429s instead of the network's time).
    """

    host: str = "127.0.0.1"
    port: int = 8600
    max_concurrent: int = 8  # requests served at once
    queue_wait: float = 2.0  # seconds a request waits for a slot before its 429
    rate: int = 100  # requests per second per client address, sustained
    burst: int = 200  # requests above the rate a client may send at once
    max_streams: int = 16  # open /events streams

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @classmethod
    def _parse(cls, t: Table) -> ApiConfig:
        host, port = t.take("listen", host_port, (cls.host, cls.port))
        section = cls(
            host=host,
            port=port,
            max_concurrent=t.take("max_concurrent", integer(1, 1024), cls.max_concurrent),
            queue_wait=t.take("queue_wait", seconds(0, 60), cls.queue_wait),
            rate=t.take("rate", integer(1, 1_000_000), cls.rate),
            burst=t.take("burst", integer(1, 1_000_000), cls.burst),
            max_streams=t.take("max_streams", integer(1, 1024), cls.max_streams),
        )
        t.finish()
        return section


@dataclass(frozen=True)
class MetricsConfig:
    """[metrics]: Prometheus metrics on `GET /metrics` at `listen` ("host:port"), a
    listener of its own (no token: bind it where only the scraper can reach it). Off when
    the section or its `listen` is absent."""

    host: str | None = None
    port: int = 9600

    @property
    def enabled(self) -> bool:
        return self.host is not None

    @property
    def address(self) -> str:
        host = self.host or "127.0.0.1"
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    @classmethod
    def _parse(cls, t: Table) -> MetricsConfig:
        listen = t.take("listen", host_port, None)
        t.finish()
        return cls() if listen is None else cls(host=listen[0], port=listen[1])


def chain_id(t: Table, k: str, raw: Any) -> bytes:
    value = text(t, k, raw)
    if not re.fullmatch(r"[0-9a-fA-F]{64}", value):
        raise t.error(k, "must be 64 hex characters (the SHA-256 of the genesis)")
    return bytes.fromhex(value)


def file_path(t: Table, k: str, raw: Any) -> Path:
    value = text(t, k, raw)
    if not value.strip():
        raise t.error(k, "must not be empty")
    path = Path(value).expanduser()
    return path if path.is_absolute() else (t.base_dir / path)


@dataclass(frozen=True)
class LedgerConfig:
    """[ledger]: the genesis file (the chain parameters and the first validators), and
    the chain id a genesis learnt from bootstrap peers must hash to (without it: the
    genesis most of them agree on)."""

    genesis: Path | None = None
    chain_id: bytes | None = None
    #: Seconds without a block, with requests waiting, before the node reports a stall.
    stall_after: float = 30.0
    #: PBFT's base view-change timeout (doubled per failed change). Under full CPU load a
    #: batch can take seconds; 2 s made the views change over and over (issue 12).
    view_timeout: float = 10.0

    @classmethod
    def _parse(cls, t: Table) -> LedgerConfig:
        section = cls(
            genesis=t.take("genesis", file_path, None),
            chain_id=t.take("chain_id", chain_id, None),
            stall_after=t.take("stall_after", seconds(1, 3600), cls.stall_after),
            view_timeout=t.take("view_timeout", seconds(0.5, 600), cls.view_timeout),
        )
        t.finish()
        return section


def one_of(options: Sequence[str]) -> Callable[[Table, str, Any], str]:
    """A string that must be exactly one of `options` (case-sensitive)."""

    def parse(t: Table, k: str, raw: Any) -> str:
        value = text(t, k, raw)
        if value not in options:
            raise t.error(k, f"must be one of {', '.join(options)}")
        return value

    return parse


_TIER_NAMES = tuple(TIERS)  # crypto/params.py defines the tiers
_BTC_NETWORKS = ("mainnet", "testnet", "signet", "regtest")


@dataclass(frozen=True)
class KeysConfig:
    """[keys]: the parameter tier of new keys, the safe-prime reserve, address network,
    the presignature pool size per key, the protocol sessions' round timeout."""

    tier: str = "standard"
    prime_reserve: int = 4
    btc_network: str = "mainnet"
    #: presignatures kept ready per key (0: none; every sign request presigns for itself)
    presign_pool: int = 0
    #: how long a session waits for a round's messages before it fails (and is retried)
    round_timeout: float = 120.0

    @property
    def prime_bits(self) -> int:
        return TIERS[self.tier].prime_bits

    @classmethod
    def _parse(cls, t: Table) -> KeysConfig:
        section = cls(
            tier=t.take("tier", one_of(_TIER_NAMES), cls.tier),
            prime_reserve=t.take("prime_reserve", integer(0, 64), cls.prime_reserve),
            btc_network=t.take("btc_network", one_of(_BTC_NETWORKS), cls.btc_network),
            presign_pool=t.take("presign_pool", integer(0, 100), cls.presign_pool),
            round_timeout=t.take("round_timeout", seconds(1, 3600), cls.round_timeout),
        )
        t.finish()
        return section


def command(t: Table, k: str, raw: Any) -> tuple[str, ...]:
    """A command run without a shell: a list of strings (argv), or one string split the way
    a POSIX shell splits words (no expansion). A relative program path with a '/' is
    relative to the config file; a bare name is looked up in PATH."""
    if isinstance(raw, str):
        try:
            argv = shlex.split(raw)
        except ValueError as exc:
            raise t.error(k, f"cannot split into words: {exc}") from None
    elif isinstance(raw, list):
        argv = []
        for i, item in enumerate(raw):
            if not isinstance(item, str):
                raise t.error(f"{k}[{i}]", f"must be a string, not {type(item).__name__}")
            argv.append(item)
    else:
        raise t.error(k, f"must be a list of strings or a string, not {type(raw).__name__}")
    if not argv or not argv[0].strip():
        raise t.error(k, "must name a program")
    program = Path(argv[0]).expanduser()
    if "/" in argv[0] and not program.is_absolute():
        argv[0] = str(t.base_dir / program)
    return tuple(argv)


def inside(path: Path, directory: Path) -> bool:
    """Whether `path` is `directory` or lies under it, symbolic links resolved (so a link
    inside the directory to a file elsewhere is outside, and the other way round)."""
    try:
        return path.resolve().is_relative_to(directory.resolve())
    except (OSError, RuntimeError):  # a link loop: judge by the names alone
        return Path(os.path.abspath(path)).is_relative_to(os.path.abspath(directory))


@dataclass(frozen=True)
class VaultConfig:
    """[vault]: where the passphrase that seals key shares at rest comes from.

    The `TSSNODE_PASSPHRASE` environment variable comes first; then `passphrase_file` (its
    contents, surrounding whitespace stripped) or `passphrase_command` (its standard
    output, stripped; it must exit 0 within `command_timeout` and print something), one
    of the two. A passphrase kept inside the data directory is refused (whoever copies
    the directory would have the shares) unless `insecure_local_key`, which also lets a
    node with no other source keep a random key in `<data_dir>/vault.key`.
    """

    passphrase_file: Path | None = None
    passphrase_command: tuple[str, ...] | None = None
    #: seconds `passphrase_command` may take
    command_timeout: float = 30.0
    #: allow a key inside the data directory (throw-away local networks only)
    insecure_local_key: bool = False

    @classmethod
    def _parse(cls, t: Table) -> VaultConfig:
        section = cls(
            passphrase_file=t.take("passphrase_file", file_path, None),
            passphrase_command=t.take("passphrase_command", command, None),
            command_timeout=t.take("command_timeout", seconds(0, 3600), cls.command_timeout),
            insecure_local_key=t.take("insecure_local_key", boolean, cls.insecure_local_key),
        )
        if section.passphrase_file is not None and section.passphrase_command is not None:
            raise t.error(
                "passphrase_command", "give passphrase_file or passphrase_command, not both"
            )
        t.finish()
        return section

    def check(self, t: Table, data_dir: Path) -> None:
        """Refuse a passphrase file inside the data directory (unless insecure_local_key)."""
        path = self.passphrase_file
        if path is not None and not self.insecure_local_key and inside(path, data_dir):
            raise t.error(
                "passphrase_file",
                f"{path} is inside the data directory {data_dir}: whoever copies the "
                "directory would have the key; keep it elsewhere (or, for a throw-away "
                "local node only, set insecure_local_key = true)",
            )


def rpc_url(t: Table, k: str, raw: Any) -> str:
    """An http(s) URL without credentials in it (they go in their own keys)."""
    value = text(t, k, raw)
    m = re.fullmatch(r"https?://([^/@\s]+)(/\S*)?", value)
    if m is None:
        raise t.error(k, "must be an http:// or https:// URL without credentials")
    return value


@dataclass(frozen=True)
class BitcoinRpcConfig:
    """[bridge.bitcoin]: the Bitcoin Core node this validator watches for deposits, by its
    JSON-RPC (`url`, e.g. http://127.0.0.1:18443 for regtest). Credentials: bitcoind's
    cookie file (`cookie_file`, `<datadir>/.cookie`), or `user` and a `password_file`.
    Off when the section or its `url` is absent: the node then observes no deposits (it
    still verifies everything the ledger holds)."""

    url: str | None = None
    cookie_file: Path | None = None
    user: str = ""
    password_file: Path | None = None
    poll: float = 5.0  # seconds between looks at the chain
    timeout: float = 30.0  # seconds an RPC call may take

    @property
    def enabled(self) -> bool:
        return self.url is not None

    @classmethod
    def _parse(cls, t: Table) -> BitcoinRpcConfig:
        section = cls(
            url=t.take("url", rpc_url, None),
            cookie_file=t.take("cookie_file", file_path, None),
            user=t.take("user", text, ""),
            password_file=t.take("password_file", file_path, None),
            poll=t.take("poll", seconds(0, 3600), cls.poll),
            timeout=t.take("timeout", seconds(0, 600), cls.timeout),
        )
        if section.cookie_file is not None and (section.user or section.password_file):
            raise t.error("cookie_file", "give a cookie file or a user and password file, not both")
        if bool(section.user) != (section.password_file is not None):
            raise t.error("user", "a user needs a password_file, and a password_file a user")
        t.finish()
        return section


@dataclass(frozen=True)
class EvmRpcConfig:
    """[bridge.evm]: the EVM node this validator reads the gateway through (Ethereum's
    JSON-RPC, `url`, e.g. http://127.0.0.1:8545 for anvil), to see which mint
    authorisations were used. Off when the section or its `url` is absent: the node then
    shows signed deposits as signed, never as minted."""

    url: str | None = None
    poll: float = 5.0  # seconds between looks at the gateway
    timeout: float = 30.0  # seconds an RPC call may take

    @property
    def enabled(self) -> bool:
        return self.url is not None

    @classmethod
    def _parse(cls, t: Table) -> EvmRpcConfig:
        section = cls(
            url=t.take("url", rpc_url, None),
            poll=t.take("poll", seconds(0, 3600), cls.poll),
            timeout=t.take("timeout", seconds(0, 600), cls.timeout),
        )
        t.finish()
        return section


@dataclass(frozen=True)
class BridgeNodeConfig:
    """[bridge]: how this node reaches the chains the bridge spans. (What the bridge does,
    its gateway, fee and confirmations, is ledger state: `POST /bridge/setup`.)"""

    bitcoin: BitcoinRpcConfig = field(default_factory=BitcoinRpcConfig)
    evm: EvmRpcConfig = field(default_factory=EvmRpcConfig)

    @classmethod
    def _parse(cls, t: Table) -> BridgeNodeConfig:
        section = cls(
            bitcoin=BitcoinRpcConfig._parse(t.table("bitcoin")),
            evm=EvmRpcConfig._parse(t.table("evm")),
        )
        t.finish()
        return section


@dataclass(frozen=True)
class NodeConfig:
    """A whole node config file."""

    node: NodeSection
    net: NetConfig
    api: ApiConfig = field(default_factory=ApiConfig)
    ledger: LedgerConfig = field(default_factory=LedgerConfig)
    keys: KeysConfig = field(default_factory=KeysConfig)
    vault: VaultConfig = field(default_factory=VaultConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    bridge: BridgeNodeConfig = field(default_factory=BridgeNodeConfig)
    source: str = "<config>"

    @property
    def genesis_path(self) -> Path:
        """[ledger] genesis, or genesis.toml in the data directory."""
        return self.ledger.genesis or self.data_dir / "genesis.toml"

    @property
    def network_id(self) -> str:
        return self.node.network_id

    @property
    def data_dir(self) -> Path:
        return self.node.data_dir

    @classmethod
    def load(cls, path: str | Path) -> NodeConfig:
        """Read and parse a config file."""
        path = Path(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ConfigError(str(path), "", f"cannot read: {exc.strerror}") from exc
        return cls.parse(raw, source=str(path), base_dir=path.parent)

    @classmethod
    def parse(
        cls, data: bytes | str, *, source: str = "<config>", base_dir: Path | None = None
    ) -> NodeConfig:
        """Parse TOML text (relative paths resolve against `base_dir`, default: cwd)."""
        try:
            text_ = data.decode("utf-8") if isinstance(data, bytes) else data
            mapping = tomllib.loads(text_)
        except UnicodeDecodeError:
            raise ConfigError(source, "", "not UTF-8 text") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(source, "", f"not valid TOML: {exc}") from None
        return cls.from_mapping(mapping, source=source, base_dir=base_dir or Path.cwd())

    @classmethod
    def from_mapping(
        cls, mapping: Mapping[str, Any], *, source: str = "<config>", base_dir: Path
    ) -> NodeConfig:
        root = Table(dict(mapping), source, "", Path(base_dir))
        for name in ("node", "net"):
            if name not in root.data:
                raise root.error(name, "section is required")
        node = NodeSection._parse(root.table("node"))
        vault_table = root.table("vault")
        vault = VaultConfig._parse(vault_table)
        vault.check(vault_table, node.data_dir)
        config = cls(
            node=node,
            net=NetConfig._parse(root.table("net")),
            api=ApiConfig._parse(root.table("api")),
            ledger=LedgerConfig._parse(root.table("ledger")),
            keys=KeysConfig._parse(root.table("keys")),
            vault=vault,
            metrics=MetricsConfig._parse(root.table("metrics")),
            bridge=BridgeNodeConfig._parse(root.table("bridge")),
            source=source,
        )
        root.finish()
        return config


# -- writing configs (fixtures, `configs/`, `tssnode cluster`) --------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value))  # JSON string escapes are valid TOML basic strings
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def render(sections: Mapping[str, Mapping[str, Any]]) -> str:
    """TOML text for `{section: {key: value}}` (values: str, Path, int, float, bool, lists);
    `None` values are left out."""
    lines: list[str] = []
    for name, keys in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in keys.items() if v is not None]
        lines.append("")
    return "\n".join(lines)


def net_defaults() -> dict[str, Any]:
    """The default of every tuning key of [net] (for docs and generated configs)."""
    return {f.name: f.default for f in fields(NetConfig) if f.name != "listen"}
