"""The validators' names (node1, node2, …), which the control API does not give: they are
in the genesis file (`[[validators]] name, public_key`), which the console reads from the
node's config (`[ledger] genesis`, else `<data dir>/genesis.toml`) or from `--genesis`.

A name is found by the validator's Ed25519 identity key (hex, as `GET /validators` and
`GET /status` give it in `validator_key`) or by its libp2p peer id, which is derived from
that key (`tssnode.config.key_peer_id`, the net layer's codec) so that a peer is named
even before the validator list is in. No Textual, nothing from the node.

The file is read leniently here, not with the node's genesis parser
(`tssnode.ledger.genesis`, which the console may not import): only `name` and
`public_key` of each `[[validators]]` entry, and a malformed one is skipped, not refused.
tests/tui/test_names.py holds this reading to the node's.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from tssnode.config import key_peer_id

#: names kept at most (a genesis lists a validator set, not thousands of entries)
MAX_NAMES = 1000


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
        pid = key_peer_id(key)
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
