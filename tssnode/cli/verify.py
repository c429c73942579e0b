"""`tssnode verify`: check an ECDSA signature (secp256k1) against a public key, offline
(libsecp256k1 through coincurve); no node is asked."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tssnode.cli.common import CommandError, print_json, short
from tssnode.crypto.digests import HASHES


@dataclass(frozen=True)
class Verdict:
    valid: bool
    public_key: str  # compressed hex
    digest: str
    r: int
    s: int
    v: int | None
    low_s: bool
    reason: str | None = None
    notes: tuple[str, ...] = ()

    def line(self) -> str:
        what = f"public key {short(self.public_key, 10, 8)}, digest {short(self.digest, 10, 8)}"
        if self.valid:
            return f"valid: the signature verifies ({what})"
        return f"INVALID: {self.reason} ({what})"

    def to_json(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "public_key": self.public_key,
            "digest": self.digest,
            "r": f"{self.r:064x}",
            "s": f"{self.s:064x}",
            "v": self.v,
            "low_s": self.low_s,
            "reason": self.reason,
            "notes": list(self.notes),
        }


def verify_signature(public_key: bytes, digest: bytes, r: int, s: int, v: int | None) -> Verdict:
    """ECDSA over secp256k1, checked by libsecp256k1 (coincurve); a high s is checked as
    its low twin and noted; with v, the key it recovers must be this one."""
    from coincurve import PublicKey
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    from tssnode.crypto.group import Q

    try:
        key = PublicKey(public_key)
    except (ValueError, TypeError) as exc:
        raise CommandError(f"the public key is not a point of secp256k1 ({exc})", 2) from None
    pub = key.format(compressed=True).hex()
    notes: list[str] = []

    def verdict(valid: bool, reason: str | None = None) -> Verdict:
        return Verdict(valid, pub, digest.hex(), r, s, v, s <= Q // 2, reason, tuple(notes))

    if not (1 <= r < Q and 1 <= s < Q):
        return verdict(False, "r and s must both be in [1, n - 1]")
    low = s
    if s > Q // 2:
        low = Q - s
        notes.append(
            "s is high (not the low-s form Bitcoin and Ethereum require); checked as n - s"
        )
    if not key.verify(encode_dss_signature(r, low), digest, hasher=None):
        return verdict(False, "the signature does not match this public key and digest")
    if v is not None:
        rec = (v - 27 if v >= 27 else v) ^ (1 if low != s else 0)
        compact = r.to_bytes(32, "big") + low.to_bytes(32, "big") + bytes([rec])
        try:
            recovered = PublicKey.from_signature_and_message(compact, digest, hasher=None)
            ok = recovered.format(compressed=True) == key.format(compressed=True)
        except Exception:
            ok = False
        if not ok:
            return verdict(False, f"r and s verify, but v = {v} recovers another public key")
        notes.append(f"v = {v} recovers this public key")
    return verdict(True)


def _hex(text: str, what: str, sizes: Sequence[int] = ()) -> bytes:
    clean = re.sub(r"\s+", "", text).removeprefix("0x").removeprefix("0X")
    try:
        raw = bytes.fromhex(clean)
    except ValueError:
        raise CommandError(f"{what} is not hexadecimal", 2) from None
    if sizes and len(raw) not in sizes:
        spelled = " or ".join(str(n) for n in sizes)
        raise CommandError(f"{what} has {len(raw)} bytes, not {spelled}", 2)
    return raw


def _int_hex(text: str, what: str) -> int:
    """A number of up to 32 bytes in hex (an odd number of digits is fine: `0`, `1f`)."""
    clean = re.sub(r"\s+", "", text).removeprefix("0x").removeprefix("0X")
    if not re.fullmatch(r"[0-9a-fA-F]{1,64}", clean):
        raise CommandError(f"{what} must be 1 to 64 hexadecimal digits", 2)
    return int(clean, 16)


def _v(value: Any) -> int:
    try:
        v = int(value)
    except (TypeError, ValueError):
        raise CommandError(f"v must be 0, 1, 27 or 28, not {value!r}", 2) from None
    if v not in (0, 1, 27, 28):
        raise CommandError(f"v must be 0, 1, 27 or 28, not {v}", 2)
    return v


def parse_signature(text: str) -> tuple[int, int, int | None]:
    """`R,S` or `R,S,V` (hex), 64 bytes r‖s or 65 bytes r‖s‖v (hex), or DER (hex)."""
    text = text.strip()
    if "," in text:
        parts = [p.strip() for p in text.split(",")]
        if len(parts) not in (2, 3):
            raise CommandError("a signature as R,S or R,S,V", 2)
        v = _v(parts[2]) if len(parts) == 3 else None
        return _int_hex(parts[0], "r"), _int_hex(parts[1], "s"), v
    raw = _hex(text, "the signature")
    if raw[:1] == b"\x30":
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        try:
            r, s = decode_dss_signature(raw)
        except ValueError:
            if len(raw) not in (64, 65):
                raise CommandError("the signature is not valid DER", 2) from None
        else:
            return r, s, None
    if len(raw) in (64, 65):
        v = _v(raw[64]) if len(raw) == 65 else None
        return int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big"), v
    raise CommandError(
        f"the signature has {len(raw)} bytes: give 64 (r‖s), 65 (r‖s‖v), DER, or R,S", 2
    )


def parser_verify() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="tssnode verify",
        description="check an ECDSA signature (secp256k1) against a public key, offline: no "
        "node is asked. Exit code 0 if it is valid, 1 if not, 2 for unusable input.",
    )
    ap.add_argument(
        "--public-key",
        required=True,
        metavar="HEX",
        help="the public key: 33 bytes compressed, 65 bytes uncompressed (04…) or 64 bytes x‖y",
    )
    msg = ap.add_mutually_exclusive_group(required=True)
    msg.add_argument(
        "--message", metavar="TEXT", help="the message as UTF-8 text (hashed with --hash)"
    )
    msg.add_argument(
        "--message-hex", metavar="HEX", help="the message as hex bytes (hashed with --hash)"
    )
    msg.add_argument(
        "--message-file",
        type=Path,
        metavar="PATH",
        help="the message: a file's bytes (hashed with --hash)",
    )
    msg.add_argument(
        "--digest", metavar="HEX", help="the 32-byte digest that was signed (no hashing)"
    )
    ap.add_argument(
        "--hash",
        default="sha256",
        choices=HASHES,
        help="how the message was hashed (default sha256), as `tssnode sign --hash`",
    )
    sig = ap.add_mutually_exclusive_group(required=True)
    sig.add_argument(
        "--signature",
        metavar="SIG",
        help="R,S or R,S,V in hex; or hex of 64 bytes r‖s, 65 bytes r‖s‖v, or DER",
    )
    sig.add_argument(
        "--signature-json",
        type=Path,
        metavar="PATH",
        help="a JSON object with r, s (and v), as `tssnode sign --json` prints; - reads stdin",
    )
    sig.add_argument("--r", metavar="HEX", help="r in hex (with --s)")
    ap.add_argument("--s", metavar="HEX", help="s in hex (with --r)")
    ap.add_argument(
        "--v",
        type=int,
        metavar="V",
        help="the recovery id (27/28 or 0/1): then the key it recovers must be --public-key",
    )
    ap.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object (valid, reason, public_key, digest, r, s, v, low_s)",
    )
    return ap


def cmd_verify(argv: Sequence[str]) -> int:
    ap = parser_verify()
    args = ap.parse_args(argv)
    try:
        verdict = _verify_args(args)
    except CommandError as exc:
        print(f"tssnode verify: {exc.message}", file=sys.stderr)
        return exc.code
    if args.json:
        print_json(verdict.to_json())
    else:
        print(verdict.line())
        for note in verdict.notes:
            print(f"  note: {note}")
    return 0 if verdict.valid else 1


def _verify_args(args: argparse.Namespace) -> Verdict:
    from tssnode.crypto.digests import message_digest

    public_key = _hex(args.public_key, "the public key", (33, 64, 65))
    if len(public_key) == 64:
        public_key = b"\x04" + public_key
    if args.digest is not None:
        digest = _hex(args.digest, "the digest", (32,))
    else:
        if args.message is not None:
            message = args.message.encode()
        elif args.message_hex is not None:
            message = _hex(args.message_hex, "the message")
        else:
            try:
                message = args.message_file.read_bytes()
            except OSError as exc:
                raise CommandError(f"cannot read {args.message_file}: {exc.strerror}", 2) from None
        digest = message_digest(message, args.hash)
    v: int | None = None
    if args.signature is not None:
        r, s, v = parse_signature(args.signature)
    elif args.signature_json is not None:
        r, s, v = _signature_from_json(args.signature_json)
    else:
        if args.s is None:
            raise CommandError("--r needs --s", 2)
        r, s = _int_hex(args.r, "r"), _int_hex(args.s, "s")
    if args.s is not None and args.r is None:
        raise CommandError("--s goes with --r", 2)
    if args.v is not None:
        v = _v(args.v)
    return verify_signature(public_key, digest, r, s, v)


def _signature_from_json(path: Path) -> tuple[int, int, int | None]:
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text()
        data = json.loads(text)
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}", 2) from None
    except ValueError:
        raise CommandError(f"{path} is not JSON", 2) from None
    if isinstance(data, dict) and isinstance(data.get("signature"), dict):
        data = data["signature"]  # `tssnode simulate --json`
    if not isinstance(data, dict) or not data.get("r") or not data.get("s"):
        raise CommandError(f"{path}: no r and s (is the signature done?)", 2)
    v = _v(data["v"]) if data.get("v") is not None else None
    return _int_hex(str(data["r"]), "r"), _int_hex(str(data["s"]), "s"), v
