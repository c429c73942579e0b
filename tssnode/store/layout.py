"""The key layout of the node's LevelDB: one prefix byte, then fixed-width big-endian fields.

Fixed widths make LevelDB's byte order equal numeric order, so "every block from height h"
is one range scan. Every key used anywhere is built by a function here.

| prefix | rest of the key                          | value                                   |
|--------|------------------------------------------|-----------------------------------------|
| `m`    | name (ASCII)                             | metadata: schema, chain id, sealing     |
| `b`    | height u64                               | block with its commit certificate       |
| `h`    | block hash (32)                          | height u64                              |
| `t`    | tx hash (32)                             | height u64 ‖ index u32                  |
| `s`    | table u8 ‖ id (table-specific)           | one ledger-state entry                  |
| `w`    | —                                        | PBFT view record (view, view-changing)  |
| `v`    | kind u8 ‖ view u64 ‖ seq u64             | this node's own signed PBFT message     |
| `p`    | seq u64                                  | this node's prepared certificate        |
| `c`    | seq u64                                  | stable checkpoint certificate (2f+1)    |
| `e`    | culprit (32) ‖ digest (32)               | equivocation evidence                   |
| `k`    | key id (16) ‖ epoch u32                  | sealed key share                        |
| `r`    | key id (16) ‖ presignature id (32)       | sealed presignature                     |
| `u`    | presignature id (32)                     | the session that used it                |
| `g`    | sign session id (32)                     | sealed signature share sent in it       |
| `a`    | tx hash (32)                             | a request this node's API accepted      |
| `o`    | key id (16) ‖ epoch u32                  | the result vote owed for the share `k`  |
| `l`    | request tx hash (32)                     | the request that retried it (32)        |
| `n`    | height u64                               | this node's note on a block: when it    |
|        |                                          | committed it, and how long that took    |

The values under `k`, `r` and `g` are sealed (`sealing.Sealer`), and so is the check value
in `m/sealing`: `SEALED` lists those prefixes, and a change of passphrase
(`sealing.rekey`) re-seals everything under them.

Ledger-state tables (`s` ‖ table): 1 validators (by public key), 2 keys (by key id),
3 requests (by tx hash), 4 pending votes (by vote id), 5 recent transactions (by hash),
6 misbehaviour records, 7 pooled presignatures (by request hash ‖ index), 0 the singleton
header (height, digest, …).
"""

from __future__ import annotations

import struct

META = b"m"
BLOCK = b"b"
BLOCK_BY_HASH = b"h"
TX = b"t"
STATE = b"s"
VIEW = b"w"
OWN_VOTE = b"v"
PREPARED = b"p"
CHECKPOINT = b"c"
EVIDENCE = b"e"
KEY_SHARE = b"k"
PRESIGNATURE = b"r"
PRESIGNATURE_USED = b"u"
SIGNATURE_SHARE = b"g"
ACCEPTED = b"a"
SHARE_VOTE = b"o"
BLOCK_NOTE = b"n"
RETRY_LINK = b"l"
#: prefixes whose values are sealed records (the vault's secrets)
SEALED = (KEY_SHARE, PRESIGNATURE, SIGNATURE_SHARE)

_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")


def u64(n: int) -> bytes:
    """n as 8 big-endian bytes (0 ≤ n < 2⁶⁴)."""
    return _U64.pack(n)


def u32(n: int) -> bytes:
    return _U32.pack(n)


def read_u64(data: bytes, offset: int = 0) -> int:
    value: int = _U64.unpack_from(data, offset)[0]
    return value


def read_u32(data: bytes, offset: int = 0) -> int:
    value: int = _U32.unpack_from(data, offset)[0]
    return value


def _fixed(data: bytes, width: int, what: str) -> bytes:
    if len(data) != width:
        raise ValueError(f"{what} must be {width} bytes")
    return data


def meta(name: str) -> bytes:
    return META + name.encode("ascii")


def block(height: int) -> bytes:
    return BLOCK + u64(height)


def retry_link(tx_hash: bytes) -> bytes:
    return RETRY_LINK + _fixed(tx_hash, 32, "transaction hash")


def block_note(height: int) -> bytes:
    return BLOCK_NOTE + u64(height)


def block_by_hash(block_hash: bytes) -> bytes:
    return BLOCK_BY_HASH + _fixed(block_hash, 32, "block hash")


def tx(tx_hash: bytes) -> bytes:
    return TX + _fixed(tx_hash, 32, "transaction hash")


def state(table: int, ident: bytes = b"") -> bytes:
    return STATE + bytes([table]) + ident


def state_table(table: int) -> bytes:
    return STATE + bytes([table])


def own_vote(kind: int, view: int, seq: int) -> bytes:
    return OWN_VOTE + bytes([kind]) + u64(view) + u64(seq)


def prepared(seq: int) -> bytes:
    return PREPARED + u64(seq)


def checkpoint(seq: int) -> bytes:
    return CHECKPOINT + u64(seq)


def evidence(culprit: bytes, digest: bytes) -> bytes:
    return EVIDENCE + _fixed(culprit, 32, "culprit") + _fixed(digest, 32, "evidence digest")


def key_id_bytes(key_id: str) -> bytes:
    """A key id (32 hex characters) as its 16 bytes."""
    try:
        raw = bytes.fromhex(key_id)
    except ValueError as exc:
        raise ValueError("a key id is 32 hex characters") from exc
    return _fixed(raw, 16, "key id")


def key_share(key_id: str, epoch: int) -> bytes:
    return KEY_SHARE + key_id_bytes(key_id) + u32(epoch)


def key_shares_of(key_id: str) -> bytes:
    return KEY_SHARE + key_id_bytes(key_id)


def presignature(key_id: str, presig_id: bytes) -> bytes:
    return PRESIGNATURE + key_id_bytes(key_id) + _fixed(presig_id, 32, "presignature id")


def presignatures_of(key_id: str) -> bytes:
    return PRESIGNATURE + key_id_bytes(key_id)


def presignature_used(presig_id: bytes) -> bytes:
    return PRESIGNATURE_USED + _fixed(presig_id, 32, "presignature id")


def signature_share(session: bytes) -> bytes:
    return SIGNATURE_SHARE + _fixed(session, 32, "session id")


def accepted(tx_hash: bytes) -> bytes:
    return ACCEPTED + _fixed(tx_hash, 32, "tx hash")


def share_vote(key_id: str, epoch: int) -> bytes:
    return SHARE_VOTE + key_id_bytes(key_id) + u32(epoch)
