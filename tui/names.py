"""The validators' names (node1, node2, …), which the control API does not give: they are
in the genesis file (`[[validators]] name, public_key`), which the console reads from the
node's config (`[ledger] genesis`, else `<data dir>/genesis.toml`) or from `--genesis`.

A name is found by the validator's Ed25519 identity key (hex, as `GET /validators` and
`GET /status` give it in `validator_key`) or by its libp2p peer id, which is derived from
that key here (identity multihash of the key's protobuf, base58btc), so that a peer is
named even before the validator list is in. No Textual, nothing from the node.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

#: protobuf of a libp2p PublicKey {Type: Ed25519, Data: <32 bytes>}, as an identity
#: multihash (code 0x00, length 36)
_ED25519_PEER_ID_PREFIX = bytes([0x00, 0x24, 0x08, 0x01, 0x12, 0x20])
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
#: names kept at most (a genesis lists a validator set, not thousands of entries)
MAX_NAMES = 1000


def b58encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, r = divmod(n, 58)
        out.append(_B58[r])
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + "".join(reversed(out))


def peer_id(ed25519_hex: str) -> str | None:
    """The libp2p peer id ('12D3KooW…') of a 32-byte Ed25519 key given in hex."""
    try:
        key = bytes.fromhex(ed25519_hex)
    except ValueError:
        return None
    if len(key) != 32:
        return None
    return b58encode(_ED25519_PEER_ID_PREFIX + key)


def names_from_genesis(data: dict[str, Any]) -> dict[str, str]:
    """{validator key hex and peer id: name} of the validators a parsed genesis lists."""
    out: dict[str, str] = {}
    validators = data.get("validators")
    for v in validators if isinstance(validators, list) else []:
        if not isinstance(v, dict):
            continue
        name, key = v.get("name"), v.get("public_key")
        if not isinstance(name, str) or not name.strip() or not isinstance(key, str):
            continue
        pid = peer_id(key)
        if pid is None:
            continue
        out[key.lower()] = out[pid] = name.strip()
        if len(out) >= 2 * MAX_NAMES:
            break
    return out


def read_genesis_names(path: Path) -> dict[str, str]:
    """The names in the genesis file at `path`; {} if there is none or it cannot be read
    (names are a help to the operator, never a reason not to start)."""
    try:
        return names_from_genesis(tomllib.loads(path.read_text()))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}
