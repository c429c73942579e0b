"""The console names validators from the genesis file without the node's genesis parser
(tui.names: the console may not import tssnode.ledger), and derives their peer ids with the
net layer's codec (through tssnode.config). These hold both to the node's, so that they
cannot drift apart: a genesis the node ships or writes is named as the node reads it, and
each peer id is the one libp2p gives the node's host."""

from __future__ import annotations

from pathlib import Path

from libp2p.peer.id import ID

from tssnode.config import key_peer_id
from tssnode.ledger.genesis import Genesis, Validator, genesis_toml, load_genesis, make_genesis
from tssnode.net import peerid
from tssnode.net.identity import NodeIdentity
from tui.names import read_genesis_names

ROOT = Path(__file__).resolve().parents[2]


def as_the_node_reads(genesis: Genesis) -> dict[str, str]:
    """{key hex and peer id: name} of the validators, by the node's own parser and codec."""
    out: dict[str, str] = {}
    for v in genesis.validators:
        peer = peerid.to_text(peerid.from_public_key(v.public_key))
        out[v.public_key.hex()] = out[peer] = v.name
    return out


def test_the_shipped_genesis_is_named_as_the_node_reads_it():
    path = ROOT / "configs" / "genesis.example.toml"
    names = read_genesis_names(path)
    assert names == as_the_node_reads(load_genesis(path))
    assert sorted(set(names.values())) == ["node1", "node2", "node3", "node4"]


def test_a_genesis_the_node_writes_is_named_by_the_peer_ids_libp2p_gives(tmp_path):
    nodes = {f"v{i}": NodeIdentity.from_seed(bytes([i]) * 32) for i in range(1, 5)}
    validators = [
        Validator(node.key.public_bytes(), name, f"/ip4/127.0.0.1/tcp/{9000 + i}")
        for i, (name, node) in enumerate(nodes.items())
    ]
    path = tmp_path / "genesis.toml"
    path.write_text(genesis_toml(make_genesis(validators, chain_name="names")))
    names = read_genesis_names(path)
    assert names == as_the_node_reads(load_genesis(path))
    for name, node in nodes.items():
        host_id = ID.from_pubkey(node.key_pair().public_key).to_base58()
        assert host_id == node.peer_id_text == key_peer_id(node.key.public_bytes().hex())
        assert names[host_id] == names[node.key.public_bytes().hex()] == name


def test_a_key_that_is_not_32_bytes_of_hex_has_no_peer_id():
    assert key_peer_id("zz") is None
    assert key_peer_id("ab" * 31) is None
    assert key_peer_id("ab" * 33) is None
