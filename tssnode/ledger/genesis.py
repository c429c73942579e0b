"""The genesis: chain parameters and the first validator set, read from a TOML file.

```toml
chain_name = "tssnode-local"       # any text; part of the chain id
checkpoint_interval = 8            # K: a checkpoint every K blocks
window = 16                        # L: watermark window, a multiple of K, at least 2K
tx_lifetime = 256                  # a transaction may name an expiry at most this far ahead

[[validators]]
name = "node1"
public_key = "…64 hex characters: the validator's Ed25519 identity key…"
address = "/ip4/127.0.0.1/tcp/9001/p2p/…"   # optional: where to reach it
```

`configs/genesis.example.toml` is a documented example. The chain id is SHA-256 of the
genesis's canonical encoding: every signature is bound to it, and a node that joins later
checks the genesis its peers send against it.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from tssnode.crypto.encoding import Wire, wire
from tssnode.ledger.errors import InvalidGenesis


@wire("tssnode.ledger.validator/1")
@dataclass(frozen=True)
class Validator(Wire):
    """A member of the validator set: its Ed25519 identity key, a name and an address."""

    public_key: bytes
    name: str
    address: str


@wire("tssnode.ledger.genesis/1")
@dataclass(frozen=True)
class Genesis(Wire):
    chain_name: str
    checkpoint_interval: int
    window: int
    tx_lifetime: int
    validators: tuple[Validator, ...]

    @cached_property
    def chain_id(self) -> bytes:
        return hashlib.sha256(self.to_bytes()).digest()

    def check(self) -> None:
        k, w = self.checkpoint_interval, self.window
        if k < 1 or w < 2 * k or w % k:
            raise InvalidGenesis("window must be a multiple of checkpoint_interval, at least 2×")
        if self.tx_lifetime < 1:
            raise InvalidGenesis("tx_lifetime must be positive")
        if not self.validators:
            raise InvalidGenesis("the genesis lists no validators")
        keys = [v.public_key for v in self.validators]
        if any(len(key) != 32 for key in keys):
            raise InvalidGenesis("a validator public key is 32 bytes (Ed25519)")
        if len(set(keys)) != len(keys):
            raise InvalidGenesis("a validator is listed twice")
        if list(self.validators) != sorted(self.validators, key=lambda v: v.public_key):
            raise InvalidGenesis("validators must be sorted by public key")


def make_genesis(
    validators: list[Validator] | tuple[Validator, ...],
    *,
    chain_name: str = "tssnode",
    checkpoint_interval: int = 8,
    window: int = 16,
    tx_lifetime: int = 256,
) -> Genesis:
    g = Genesis(
        chain_name,
        checkpoint_interval,
        window,
        tx_lifetime,
        tuple(sorted(validators, key=lambda v: v.public_key)),
    )
    g.check()
    return g


def parse_genesis(data: dict[str, Any]) -> Genesis:
    try:
        validators = [
            Validator(bytes.fromhex(v["public_key"]), str(v["name"]), str(v.get("address", "")))
            for v in data["validators"]
        ]
        return make_genesis(
            validators,
            chain_name=str(data["chain_name"]),
            checkpoint_interval=int(data.get("checkpoint_interval", 8)),
            window=int(data.get("window", 16)),
            tx_lifetime=int(data.get("tx_lifetime", 256)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidGenesis(f"malformed genesis: {exc}") from exc


def load_genesis(path: Path | str) -> Genesis:
    """Read and check a genesis TOML file."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidGenesis(f"cannot read the genesis file {path}: {exc}") from exc
    return parse_genesis(data)


def genesis_toml(g: Genesis) -> str:
    """The TOML text of a genesis (what `load_genesis` reads back)."""
    lines = [
        f"chain_name = {json.dumps(g.chain_name)}",
        f"checkpoint_interval = {g.checkpoint_interval}",
        f"window = {g.window}",
        f"tx_lifetime = {g.tx_lifetime}",
    ]
    for v in g.validators:
        lines += [
            "",
            "[[validators]]",
            f"name = {json.dumps(v.name)}",
            f'public_key = "{v.public_key.hex()}"',
            f"address = {json.dumps(v.address)}",
        ]
    return "\n".join(lines) + "\n"
