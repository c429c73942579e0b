"""The node's identity: an Ed25519 key pair kept in its data directory.

The key is created on first start (`node.key`, mode 0600, written atomically) and reloaded
afterwards, so a restarted node keeps its peer id. The same key is the libp2p host key
(Noise authenticates connections with it), signs every envelope the node sends, and is the
node's protocol identity key (`tssnode.crypto.identity.IdentityKey`).

The file holds the canonical encoding of `NodeKeyFile` (the 32-byte seed); a file that is
malformed, of another type, or readable by group or others is refused, like ssh does.
"""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair

from tssnode.crypto.encoding import Wire, wire
from tssnode.crypto.identity import IdentityKey
from tssnode.errors import EncodingError
from tssnode.net import peerid
from tssnode.net.errors import IdentityError

KEY_FILE = "node.key"


@wire("tssnode.net.node-key/1")
@dataclass(frozen=True, repr=False)
class NodeKeyFile(Wire):
    """What `node.key` contains: the key type and the Ed25519 seed."""

    kind: str
    seed: bytes


@dataclass(frozen=True, repr=False)
class NodeIdentity:
    """A node's key pair (secret; never printed) and the peer id derived from it."""

    key: IdentityKey

    def __repr__(self) -> str:
        return f"NodeIdentity({self.peer_id_text})"

    @staticmethod
    def generate() -> NodeIdentity:
        return NodeIdentity(IdentityKey.generate())

    @staticmethod
    def from_seed(seed: bytes) -> NodeIdentity:
        if len(seed) != 32:
            raise IdentityError("an Ed25519 seed is 32 bytes")
        return NodeIdentity(IdentityKey.from_seed(seed))

    @property
    def peer_id(self) -> bytes:
        """The binary peer id (identity multihash of the public key)."""
        return peerid.from_public_key(self.key.public_bytes())

    @property
    def peer_id_text(self) -> str:
        return peerid.to_text(self.peer_id)

    def sign(self, data: bytes) -> bytes:
        return self.key.sign(data)

    def key_pair(self) -> KeyPair:
        """The same key as a libp2p key pair (for the host and Noise)."""
        pair: KeyPair = create_new_key_pair(self.key.seed())
        return pair


def key_path(data_dir: Path) -> Path:
    return Path(data_dir) / KEY_FILE


def load(data_dir: Path) -> NodeIdentity:
    """Load the node key from `data_dir`; refuse a key file that others can read."""
    path = key_path(data_dir)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError as exc:
        raise IdentityError(f"{path}: no node key") from exc
    except OSError as exc:
        raise IdentityError(f"{path}: cannot open the node key: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(f.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise IdentityError(f"{path}: not a regular file")
        if mode & 0o077:
            raise IdentityError(
                f"{path}: the node key is readable by others (mode {stat.S_IMODE(mode):o}); "
                "it must be 0600"
            )
        data = f.read(4096)
    try:
        content = NodeKeyFile.from_bytes(data)
    except EncodingError as exc:
        raise IdentityError(f"{path}: not a node key file") from exc
    if content.kind != "ed25519":
        raise IdentityError(f"{path}: unsupported key type {content.kind!r}")
    return NodeIdentity.from_seed(content.seed)


def create(data_dir: Path) -> NodeIdentity:
    """Create a fresh node key in `data_dir` (mode 0600); refuse to overwrite one."""
    data_dir = Path(data_dir)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    identity = NodeIdentity.generate()
    data = NodeKeyFile("ed25519", identity.key.seed()).to_bytes()
    path = key_path(data_dir)
    tmp = path.with_name(f".{KEY_FILE}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)  # left over by a crashed earlier process with the same pid
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)  # fails if a key appeared meanwhile: never overwrite one
    except FileExistsError as exc:
        raise IdentityError(f"{path}: a node key already exists") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    dir_fd = os.open(data_dir, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return identity


def load_or_create(data_dir: Path) -> tuple[NodeIdentity, bool]:
    """The node key of `data_dir`, created on first use; the flag says whether it was new."""
    if key_path(data_dir).exists() or key_path(data_dir).is_symlink():
        return load(data_dir), False
    try:
        return create(data_dir), True
    except IdentityError:
        if key_path(data_dir).exists():  # lost a creation race: use the winner's key
            return load(data_dir), False
        raise
