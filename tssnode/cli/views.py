"""A running node's answers (status, validators, keys, signatures, blocks) as text for
people: label/value rows for one item, tables for lists."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from tssnode.cli.common import Row, ago, duration, fmt, head, short, table, when


def _failure(data: dict[str, Any]) -> str:
    blame = data.get("blame")
    if isinstance(blame, dict) and blame:
        culprits = ", ".join(str(c) for c in blame.get("culprits") or []) or "nobody named"
        check = blame.get("check") or "aborted"
        return f"{check} (round {fmt(blame.get('round'))}; culprits {culprits})"
    return str(data.get("error") or "no reason given")


def key_rows(key: dict[str, Any]) -> list[Row]:
    t = key.get("threshold")
    parties = [str(p) for p in key.get("parties") or []]
    threshold = "-"
    if isinstance(t, int):
        threshold = f"{t} (any {t + 1} of {len(parties)} parties sign)"
    addresses = key.get("addresses") or {}
    rows: list[Row] = [
        ("key id", fmt(key.get("key_id"))),
        ("status", fmt(key.get("status"))),
        ("threshold", threshold),
        ("parties", parties or "-"),
    ]
    if "holders" in key:
        rows.append(("holders", [str(h) for h in key.get("holders") or []] or "-"))
    rows += [
        ("epoch", fmt(key.get("epoch"))),
        ("tier", fmt(key.get("tier"))),
        ("public key", fmt(key.get("public_key"))),
        ("eth address", fmt(addresses.get("eth"))),
        ("btc address", fmt(addresses.get("btc_p2wpkh"))),
    ]
    if "presignatures" in key:
        ready, pending = key.get("presignatures"), key.get("presignatures_pending")
        text = f"{fmt(ready)} ready" + (f", {pending} being made" if pending else "")
        rows.append(("presignatures", text))
    for child in key.get("children") or []:
        eth = (child.get("addresses") or {}).get("eth")
        rows.append((f"child {child.get('path')}", f"{child.get('public_key')} ({fmt(eth)})"))
    rows += [("height", fmt(key.get("height"))), ("error", fmt(key.get("error")))]
    return rows


def signature_rows(sig: dict[str, Any]) -> list[Row]:
    rows: list[Row] = [
        ("signature id", fmt(sig.get("signature_id"))),
        ("status", fmt(sig.get("status"))),
        ("key id", fmt(sig.get("key_id"))),
        ("path", fmt(sig.get("path"))),
        ("digest", fmt(sig.get("digest"))),
        ("r", fmt(sig.get("r"))),
        ("s", fmt(sig.get("s"))),
        ("v", fmt(sig.get("v"))),
        ("signers", [str(s) for s in sig.get("signers") or []] or "-"),
        ("height", fmt(sig.get("height"))),
    ]
    if sig.get("attempts", 1) != 1:
        rows.append(("attempts", fmt(sig.get("attempts"))))
    if sig.get("blame"):
        rows.append(("blame", _failure(sig)))
    if sig.get("error"):
        rows.append(("error", fmt(sig.get("error"))))
    return rows


STATUS_LABELS = {
    "peer_id": "peer id",
    "network": "network",
    "chain_id": "chain id",
    "version": "version",
    "uptime_s": "uptime",
    "height": "height",
    "view": "view",
    "primary": "primary",
    "is_primary": "this node is primary",
    "last_block_age_s": "last block",
    "pending_requests": "pending requests",
    "view_change": "view change",
    "validators": "validators",
    "validators_online": "validators online",
    "quorum": "quorum",
    "peers_connected": "peers connected",
    "stalled": "stalled",
    "below_quorum": "below quorum",
    "liveness": "liveness",
    "warnings": "warnings",
    "addrs": "addresses",
    "api_refused": "API refused (429)",
}


def status_rows(status: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for key, label in STATUS_LABELS.items():
        if key not in status:
            continue
        value = status[key]
        if key == "uptime_s":
            rows.append((label, duration(value)))
        elif key == "last_block_age_s":
            rows.append((label, ago(value)))
        elif key in ("warnings", "addrs"):
            rows.append((label, [fmt(v) for v in value or []] or "-"))
        else:
            rows.append((label, fmt(value)))
    for key, value in status.items():
        if key not in STATUS_LABELS:
            rows.append((key.replace("_", " "), fmt(value)))
    return rows


def _tx_kinds(txs: Sequence[Any]) -> str:
    kinds = Counter(str(t.get("kind", "?")) if isinstance(t, dict) else "?" for t in txs)
    return ", ".join(k if c == 1 else f"{c}×{k}" for k, c in kinds.items()) or "-"


def blocks_table(blocks: Sequence[dict[str, Any]]) -> str:
    rows = []
    for b in blocks:
        cert = b.get("certificate") or {}
        rows.append(
            [
                fmt(b.get("height")),
                when(b.get("time")),
                head(b.get("hash")),
                short(b.get("proposer")),
                fmt(b.get("view")),
                fmt(len(cert.get("signers") or [])) if cert else "-",
                fmt(len(b.get("txs") or [])),
                _tx_kinds(b.get("txs") or []),
            ]
        )
    headers = ["HEIGHT", "TIME", "HASH", "PROPOSER", "VIEW", "VOTES", "TXS", "KINDS"]
    return table(headers, rows, right=(0, 4, 5, 6))


def keys_table(keys: Sequence[dict[str, Any]]) -> str:
    rows = []
    for k in keys:
        t, parties = k.get("threshold"), k.get("parties") or []
        rows.append(
            [
                fmt(k.get("key_id")),
                fmt(k.get("status")),
                f"{t} (any {t + 1} of {len(parties)})" if isinstance(t, int) else "-",
                fmt(k.get("epoch")),
                short(k.get("public_key"), 10, 8),
                fmt(k.get("presignatures")),
                fmt(k.get("height")),
            ]
        )
    headers = ["KEY ID", "STATUS", "THRESHOLD", "EPOCH", "PUBLIC KEY", "PRESIGS", "HEIGHT"]
    return table(headers, rows, right=(3, 5, 6))


def signatures_table(sigs: Sequence[dict[str, Any]]) -> str:
    rows = [
        [
            fmt(s.get("signature_id")),
            fmt(s.get("status")),
            head(s.get("key_id")),
            fmt(s.get("path")),
            fmt(s.get("height")),
            fmt(len(s.get("signers") or [])),
        ]
        for s in sigs
    ]
    headers = ["SIGNATURE ID", "STATUS", "KEY", "PATH", "HEIGHT", "SIGNERS"]
    return table(headers, rows, right=(4, 5))


def validators_table(validators: Sequence[dict[str, Any]]) -> str:
    rows = [
        [
            fmt(v.get("index")),
            fmt(v.get("peer_id")),
            fmt(v.get("status")),
            fmt(len(v.get("keys") or [])),
        ]
        for v in validators
    ]
    return table(["#", "PEER ID", "STATUS", "KEYS"], rows, right=(0, 3))
