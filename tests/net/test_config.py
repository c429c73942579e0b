"""The TOML node config: a full file parses into typed sections, every bad field is a
`ConfigError` naming that field, and generated configs parse back to the same value."""

from __future__ import annotations

from pathlib import Path

import pytest

from tssnode.config import ConfigError, NetConfig, NodeConfig, net_defaults, render
from tssnode.net.identity import NodeIdentity

PEER_A = NodeIdentity.from_seed(bytes(range(32))).peer_id_text
PEER_B = NodeIdentity.from_seed(bytes(range(1, 33))).peer_id_text
LISTEN = 'listen = "/ip4/127.0.0.1/tcp/4001"'
A_ADDR = f"/ip4/127.0.0.1/tcp/4002/p2p/{PEER_A}"
RSA_PEER = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"  # a valid id, but not Ed25519

BOOT = f'bootstrap = ["/ip4/127.0.0.1/tcp/4002/p2p/{PEER_A}", "/ip6/::1/tcp/4003/p2p/{PEER_B}"]'
GOOD = f"""
[node]
network_id = "local-4"
data_dir = "data/node1"

[net]
listen = "/ip4/127.0.0.1/tcp/4001"
{BOOT}
allowed_peers = ["{PEER_A}", "{PEER_B}"]
op_timeout = 3
ping_failures = 5
libp2p_log_level = "info"

[api]
listen = "127.0.0.1:8601"
"""


def parse(text: str, base: Path = Path("/etc/tss")) -> NodeConfig:
    return NodeConfig.parse(text, source="node.toml", base_dir=base)


def test_full_config_parses_into_typed_sections() -> None:
    cfg = parse(GOOD)
    assert cfg.network_id == "local-4"
    assert cfg.data_dir == Path("/etc/tss/data/node1")  # relative to the file
    assert cfg.net.listen == "/ip4/127.0.0.1/tcp/4001"
    assert cfg.net.bootstrap[1] == f"/ip6/::1/tcp/4003/p2p/{PEER_B}"
    assert cfg.net.allowed_peers == (PEER_A, PEER_B)
    assert cfg.net.op_timeout == 3.0 and isinstance(cfg.net.op_timeout, float)
    assert cfg.net.ping_failures == 5
    assert cfg.net.libp2p_log_level == "INFO"
    assert cfg.net.send_deadline == NetConfig.send_deadline  # untouched keys: defaults
    assert (cfg.api.host, cfg.api.port, cfg.api.address) == ("127.0.0.1", 8601, "127.0.0.1:8601")


def test_ledger_and_keys_sections() -> None:
    cfg = parse(
        GOOD + f'[ledger]\nchain_id = "{"AB" * 32}"\n[keys]\npresign_pool = 4\nround_timeout = 30\n'
    )
    assert cfg.ledger.chain_id == b"\xab" * 32 and cfg.ledger.genesis is None
    assert cfg.genesis_path == cfg.data_dir / "genesis.toml"  # learnt there if missing
    assert cfg.keys.presign_pool == 4 and cfg.keys.round_timeout == 30.0
    assert parse(GOOD).keys.presign_pool == 0  # no pool unless asked for


def test_node_workers_default_to_the_cpus_this_process_may_use() -> None:
    import os

    assert parse(GOOD).node.workers == len(os.sched_getaffinity(0))
    assert (
        parse(GOOD.replace('data_dir = "data/node1"', 'data_dir = "d"\nworkers = 3')).node.workers
        == 3
    )


def test_minimal_config_takes_defaults(tmp_path: Path) -> None:
    path = tmp_path / "n.toml"
    path.write_text(
        '[node]\nnetwork_id="n"\ndata_dir="/var/x"\n[net]\nlisten="/ip4/0.0.0.0/tcp/0"\n'
    )
    cfg = NodeConfig.load(path)
    assert cfg.net.bootstrap == () and cfg.net.allowed_peers is None
    assert cfg.api.address == "127.0.0.1:8600"
    assert cfg.source == str(path)


BAD = [
    # (what to change, expected dotted key, words in the message)
    ('network_id = "local-4"', 'network_id = "bad id!"', "node.network_id", "letters"),
    ('network_id = "local-4"', "network_id = 4", "node.network_id", "string"),
    ('network_id = "local-4"', "", "node.network_id", "required"),
    ('data_dir = "data/node1"', 'data_dir = " "', "node.data_dir", "empty"),
    ('data_dir = "data/node1"', "data_dir = []", "node.data_dir", "string"),
    (LISTEN, 'listen = "tcp:4001"', "net.listen", "multiaddr"),
    (
        LISTEN,
        'listen = "/ip4/127.0.0.1/udp/4001"',
        "net.listen",
        "tcp",
    ),
    (
        LISTEN,
        'listen = "/ip4/1.2.3.4/tcp/99999"',
        "net.listen",
        "multiaddr",
    ),
    (LISTEN, "", "net.listen", "required"),
    (BOOT, 'bootstrap = ["/ip4/127.0.0.1/tcp/5"]', "net.bootstrap[0]", "p2p"),
    (BOOT, f'bootstrap = ["/ip4/127.0.0.1/tcp/5/p2p/{RSA_PEER}"]', "net.bootstrap[0]", "peer id"),
    (BOOT, f'bootstrap = ["/ip4/0.0.0.0/tcp/5/p2p/{PEER_A}"]', "net.bootstrap[0]", "unspecified"),
    (BOOT, f'bootstrap = ["/ip4/127.0.0.1/tcp/0/p2p/{PEER_A}"]', "net.bootstrap[0]", "port 0"),
    (BOOT, 'bootstrap = "one"', "net.bootstrap", "list"),
    (BOOT, f"bootstrap = [{A_ADDR!r}, {A_ADDR!r}]".replace("'", '"'), "net.bootstrap[1]", "twice"),
    (
        f'allowed_peers = ["{PEER_A}"',
        'allowed_peers = ["12D3KooWnope"',
        "net.allowed_peers[0]",
        "peer id",
    ),
    ("op_timeout = 3", "op_timeout = 0", "net.op_timeout", "more than"),
    ("op_timeout = 3", 'op_timeout = "3s"', "net.op_timeout", "seconds"),
    ("op_timeout = 3", "op_timeout = nan", "net.op_timeout", "more than"),
    ("ping_failures = 5", "ping_failures = 2.5", "net.ping_failures", "integer"),
    ("ping_failures = 5", "ping_failures = true", "net.ping_failures", "integer"),
    ("ping_failures = 5", "ping_failures = 0", "net.ping_failures", "between"),
    ("ping_failures = 5", "redial_min = 5.0\nredial_max = 1.0", "net.redial_max", "redial_min"),
    ("ping_failures = 5", "send_deadline = 1.0", "net.send_deadline", "op_timeout"),
    ('libp2p_log_level = "info"', 'libp2p_log_level = "loud"', "net.libp2p_log_level", "one of"),
    ("ping_failures = 5", "max_frame_bytes = 10", "net.max_frame_bytes", "between"),
    ("ping_failures = 5", "pingfailures = 5", "net.pingfailures", "unknown"),
    ('listen = "127.0.0.1:8601"', 'listen = "127.0.0.1"', "api.listen", "host:port"),
    ('listen = "127.0.0.1:8601"', 'listen = "example.com:80"', "api.listen", "IP address"),
    ('listen = "127.0.0.1:8601"', 'listen = "127.0.0.1:70000"', "api.listen", "65535"),
    (
        'listen = "127.0.0.1:8601"',
        'listen = "127.0.0.1:8601"\n[ledger]\nchain_id = "ab"',
        "ledger.chain_id",
        "64 hex",
    ),
    (
        'listen = "127.0.0.1:8601"',
        'listen = "127.0.0.1:8601"\n[keys]\npresign_pool = 101',
        "keys.presign_pool",
        "between",
    ),
    (
        'listen = "127.0.0.1:8601"',
        'listen = "127.0.0.1:8601"\n[keys]\nround_timeout = 0',
        "keys.round_timeout",
        "more than",
    ),
    ('listen = "127.0.0.1:8601"', 'listen = "127.0.0.1:8601"\nrate = 0', "api.rate", "between"),
    ('listen = "127.0.0.1:8601"', 'listen = "127.0.0.1:8601"\nburst = "9"', "api.burst", "integer"),
    (
        'listen = "127.0.0.1:8601"',
        'listen = "127.0.0.1:8601"\nmax_concurrent = 0',
        "api.max_concurrent",
        "between",
    ),
    (
        'listen = "127.0.0.1:8601"',
        'listen = "127.0.0.1:8601"\nqueue_wait = -1',
        "api.queue_wait",
        "more than",
    ),
    ('data_dir = "data/node1"', 'data_dir = "d"\nworkers = 0', "node.workers", "between"),
    ('data_dir = "data/node1"', 'data_dir = "d"\nworkers = "2"', "node.workers", "integer"),
    ("[api]", "[apx]", "apx", "unknown"),
    ("[api]", "[api]\nextra = 1", "api.extra", "unknown"),
]


@pytest.mark.parametrize(("old", "new", "key", "words"), BAD)
def test_every_bad_field_is_named(old: str, new: str, key: str, words: str) -> None:
    assert old in GOOD
    with pytest.raises(ConfigError) as caught:
        parse(GOOD.replace(old, new, 1))
    assert caught.value.key == key
    assert words in caught.value.problem
    assert str(caught.value).startswith(f"node.toml: {key}: ")


def test_api_limits() -> None:
    assert parse(GOOD).api.rate == 100 and parse(GOOD).api.max_concurrent == 8  # defaults
    limited = 'listen = "127.0.0.1:8601"\nrate = 20\nburst = 50\nmax_streams = 2'
    cfg = parse(GOOD.replace('listen = "127.0.0.1:8601"', limited))
    assert (cfg.api.rate, cfg.api.burst, cfg.api.max_streams) == (20, 50, 2)


def test_ipv6_api_address_in_brackets() -> None:
    cfg = parse(GOOD.replace('listen = "127.0.0.1:8601"', 'listen = "[::1]:8601"'))
    assert (cfg.api.host, cfg.api.port, cfg.api.address) == ("::1", 8601, "[::1]:8601")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[node\n", "not valid TOML"),
        (b"\xff\xfe", "UTF-8"),
        ('[net]\nlisten = "/ip4/127.0.0.1/tcp/1"\n', "section is required"),
        ("node = 3\n[net]\n", "must be a table"),
    ],
)
def test_unusable_files(text: str | bytes, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        NodeConfig.parse(text, base_dir=Path("/"))


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        NodeConfig.load(tmp_path / "missing.toml")


def test_rendered_config_parses_back(tmp_path: Path) -> None:
    original = parse(GOOD, base=tmp_path)
    net = {k: getattr(original.net, k) for k in NetConfig.__dataclass_fields__}
    text = render(
        {
            "node": {"network_id": original.network_id, "data_dir": original.data_dir},
            "net": net,
            "api": {"listen": original.api.address},
        }
    )
    again = NodeConfig.parse(text, source=original.source, base_dir=tmp_path)
    assert again == original
    assert set(net_defaults()) == set(NetConfig.__dataclass_fields__) - {"listen"}
