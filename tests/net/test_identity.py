"""Node identity: created on first start (mode 0600), reloaded afterwards, refused when
unsafe or malformed; peer ids derived and parsed exactly as libp2p does."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from libp2p.peer.id import ID

from tssnode.net import identity, peerid
from tssnode.net.errors import IdentityError, InvalidPeerId
from tssnode.net.identity import NodeIdentity


def test_created_on_first_start_then_reloaded(tmp_path: Path) -> None:
    data_dir = tmp_path / "node"
    first, created = identity.load_or_create(data_dir)
    assert created
    mode = os.stat(identity.key_path(data_dir)).st_mode
    assert stat.S_IMODE(mode) == 0o600
    assert stat.S_IMODE(os.stat(data_dir).st_mode) == 0o700
    again, created_again = identity.load_or_create(data_dir)
    assert not created_again
    assert again.peer_id == first.peer_id
    assert again.key.seed() == first.key.seed()
    assert not list(data_dir.glob(".node.key.*"))  # no temporary file left behind


def test_peer_id_matches_libp2p(tmp_path: Path) -> None:
    node = NodeIdentity.generate()
    libp2p_id = ID.from_pubkey(node.key_pair().public_key)
    assert libp2p_id.to_bytes() == node.peer_id
    assert libp2p_id.to_base58() == node.peer_id_text
    assert peerid.public_key(node.peer_id) == node.key.public_bytes()
    assert repr(node) == f"NodeIdentity({node.peer_id_text})"  # the seed is never shown


def test_refuses_a_key_others_can_read(tmp_path: Path) -> None:
    identity.create(tmp_path)
    os.chmod(identity.key_path(tmp_path), 0o644)
    with pytest.raises(IdentityError, match="readable by others"):
        identity.load(tmp_path)


def test_refuses_malformed_and_foreign_files(tmp_path: Path) -> None:
    path = identity.key_path(tmp_path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"-----BEGIN PRIVATE KEY-----")
    os.close(fd)
    with pytest.raises(IdentityError, match="not a node key file"):
        identity.load(tmp_path)
    path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, identity.NodeKeyFile("rsa", bytes(32)).to_bytes())
    os.close(fd)
    with pytest.raises(IdentityError, match="unsupported key type"):
        identity.load(tmp_path)


def test_refuses_a_symlink_and_never_overwrites(tmp_path: Path) -> None:
    real = tmp_path / "elsewhere"
    identity.create(real)
    linked = tmp_path / "linked"
    linked.mkdir()
    identity.key_path(linked).symlink_to(identity.key_path(real))
    with pytest.raises(IdentityError, match="cannot open"):
        identity.load_or_create(linked)
    with pytest.raises(IdentityError, match="already exists"):
        identity.create(real)


def test_missing_key(tmp_path: Path) -> None:
    with pytest.raises(IdentityError, match="no node key"):
        identity.load(tmp_path)


def test_peer_id_text_forms() -> None:
    node = NodeIdentity.from_seed(bytes(32))
    assert peerid.from_text(node.peer_id_text) == node.peer_id
    assert peerid.to_text(node.peer_id).startswith("12D3KooW")
    rsa_style = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"
    for bad in ["", "0OIl", rsa_style, "1" + node.peer_id_text]:
        with pytest.raises(InvalidPeerId):
            peerid.from_text(bad)
    with pytest.raises(InvalidPeerId):
        peerid.check_peer_id(node.peer_id[:-1])
    with pytest.raises(IdentityError):
        NodeIdentity.from_seed(b"short")
