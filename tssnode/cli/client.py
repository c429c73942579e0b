"""The clients of a running node's API: `tssnode status|validators|keys|signatures|blocks`
read it, `tssnode keygen|sign` ask it and wait for the result.

The node is `--config FILE` (its API address and data directory with api.token), else
`--api URL --token-file PATH`, else `$TSSNODE_CONFIG`, else `./tssnode.toml`."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tssnode.api.client import ApiClient, ApiError, ApiUnavailable, get_or_none, read_token
from tssnode.cli.common import CommandError, fmt, kv, print_json
from tssnode.cli.configs import CONFIG_ENV, DEFAULT_CONFIG, api_url, load_config
from tssnode.cli.follow import WaitTimeout, follow
from tssnode.cli.views import (
    _failure,
    blocks_table,
    key_rows,
    keys_table,
    signature_rows,
    signatures_table,
    status_rows,
    validators_table,
)
from tssnode.crypto.digests import HASHES

#: the API's largest `limit` of GET /blocks
MAX_BLOCKS = 500


def _client_args(ap: argparse.ArgumentParser, *, json_help: str | None = None) -> None:
    where = ap.add_argument_group(
        "which node",
        f"--config FILE, else --api with --token-file, else ${CONFIG_ENV}, else ./{DEFAULT_CONFIG}",
    )
    where.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="the node's config file (it names the API address and the data directory "
        "with api.token)",
    )
    where.add_argument(
        "--api", metavar="URL", help="the node's API base URL, e.g. http://127.0.0.1:3001"
    )
    where.add_argument(
        "--token-file",
        type=Path,
        metavar="PATH",
        help="with --api: the node's API token file (<data dir>/api.token)",
    )
    ap.add_argument(
        "--json",
        action="store_true",
        help=json_help or "print the API's answer as one JSON document instead of text",
    )


def _client(args: argparse.Namespace) -> ApiClient:
    if args.api and args.config:
        raise CommandError("give --config or --api, not both", 2)
    if args.api:
        if not args.token_file:
            raise CommandError("--api needs --token-file PATH (the node's api.token)", 2)
        return ApiClient(args.api.rstrip("/"), _token(args.token_file))
    if args.token_file:
        raise CommandError("--token-file goes with --api URL", 2)
    cfg = load_config(args.config)
    return ApiClient(api_url(cfg), _token(cfg.data_dir / "api.token"))


def _token(path: Path) -> str:
    try:
        return read_token(path)
    except OSError as exc:
        raise CommandError(
            f"cannot read the API token {path}: {exc.strerror or exc} (the node writes it "
            "when it first starts; `tssnode init` makes it too)"
        ) from None


def _positive(limit: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if not 1 <= value <= limit:
            raise argparse.ArgumentTypeError(f"must be between 1 and {limit}")
        return value

    return parse


def _peer_ids(text: str) -> list[str]:
    return [p for p in re.split(r"[,\s]+", text) if p]


def parser_client(command: str) -> argparse.ArgumentParser:
    descriptions = {
        "status": "a node's status: chain height, view, peers, liveness, warnings",
        "validators": "the validators: index, peer id (what --parties takes), online or not",
        "keys": "the keys this node knows (newest first), or one key in full",
        "keygen": "ask for a threshold key and wait until it is active (or failed)",
        "sign": "ask for a signature and wait for it; stdout gets only the result",
        "signatures": "signatures requested in the ledger, newest first, or one in full",
        "blocks": "the newest blocks, newest first",
    }
    ap = argparse.ArgumentParser(prog=f"tssnode {command}", description=descriptions[command])
    _client_args(ap)
    wait_help = "print the accepted request (its id) at once instead of waiting for the result"
    if command == "keys":
        ap.add_argument(
            "key_id",
            nargs="?",
            metavar="KEY_ID",
            help="show this key in full (also takes the id POST /keygen returned)",
        )
    elif command == "keygen":
        ap.add_argument(
            "--threshold",
            type=int,
            required=True,
            metavar="T",
            help="any T + 1 of the parties sign; T = 0 needs --single-signer",
        )
        ap.add_argument(
            "--parties",
            nargs="+",
            type=_peer_ids,
            metavar="PEER_ID",
            help="the validators to hold the key, by libp2p peer id (12D3KooW…, as "
            "`tssnode validators` lists them; space- or comma-separated); default: every "
            "validator",
        )
        ap.add_argument(
            "--single-signer",
            action="store_true",
            help="allow --threshold 0: a key any one party can use alone",
        )
        ap.add_argument("--no-wait", action="store_true", help=wait_help)
        ap.add_argument(
            "--timeout",
            type=float,
            default=600.0,
            metavar="SECONDS",
            help="give up waiting after this long (default 600; the request stays accepted)",
        )
    elif command == "sign":
        ap.add_argument(
            "--key-id",
            required=True,
            metavar="KEY_ID",
            help="the key to sign with (its id, or the id POST /keygen returned)",
        )
        group = ap.add_mutually_exclusive_group(required=True)
        group.add_argument("--message", metavar="TEXT", help="the message, as UTF-8 text")
        group.add_argument("--message-hex", metavar="HEX", help="the message, as hex bytes")
        ap.add_argument(
            "--hash",
            default="sha256",
            choices=HASHES,
            help="how the signers hash the message (default sha256; eip191 is Ethereum's "
            "personal_sign)",
        )
        ap.add_argument(
            "--path",
            metavar="PATH",
            help="sign with the child key at this non-hardened BIP-32 path, e.g. m/0/1",
        )
        ap.add_argument("--no-wait", action="store_true", help=wait_help)
        ap.add_argument(
            "--timeout",
            type=float,
            default=300.0,
            metavar="SECONDS",
            help="give up waiting after this long (default 300; the request stays accepted)",
        )
    elif command == "signatures":
        ap.add_argument(
            "signature_id",
            nargs="?",
            metavar="SIGNATURE_ID",
            help="show this signature in full (any id, also one not yet in a block)",
        )
        ap.add_argument("--key-id", metavar="KEY_ID", help="only the signatures of this key")
        ap.add_argument(
            "--limit",
            type=_positive(1000),
            default=20,
            metavar="N",
            help="list at most N signatures (default 20)",
        )
    elif command == "blocks":
        ap.add_argument(
            "--from",
            dest="start",
            type=_positive(2**62),
            metavar="HEIGHT",
            help="the blocks from this height up (default: the newest ones)",
        )
        ap.add_argument(
            "--limit",
            type=_positive(MAX_BLOCKS),
            default=20,
            metavar="N",
            help=f"how many blocks (default 20, at most {MAX_BLOCKS})",
        )
    return ap


def _list_signatures(api: ApiClient, key_id: str | None, limit: int) -> list[dict[str, Any]]:
    """The sign requests in the ledger, newest first (each is a SignRequest transaction,
    whose hash is the signature id), read from the blocks backwards."""
    if key_id is not None:
        key = get_or_none(api, f"/keys/{key_id}")
        if key is None:
            raise CommandError(f"unknown key id {key_id}")
        key_id = str(key.get("key_id") or key_id)
    top = int(api.get("/status").get("height") or 0)
    found: list[dict[str, Any]] = []
    while top >= 1 and len(found) < limit:
        start = max(1, top - 99)  # 100 blocks a request: short turns on the node's loop
        blocks = api.get("/blocks", **{"from": start, "limit": top - start + 1})
        for block in sorted(blocks, key=lambda b: int(b.get("height") or 0), reverse=True):
            for tx in reversed(block.get("txs") or []):
                if not isinstance(tx, dict) or tx.get("kind") != "SignRequest":
                    continue
                sig = get_or_none(api, f"/signatures/{tx.get('hash')}")
                if sig is None or (key_id is not None and sig.get("key_id") != key_id):
                    continue
                found.append(sig)
                if len(found) >= limit:
                    return found
        top = start - 1
    return found


def _sort_keys(keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pending requests first, then the newest keys."""
    return sorted(keys, key=lambda k: (k.get("height") is not None, -(k.get("height") or 0)))


def cmd_client(command: str, argv: Sequence[str]) -> int:
    args = parser_client(command).parse_args(argv)
    try:
        with _client(args) as api:
            try:
                return _client_command(command, args, api)
            except ApiUnavailable:
                raise CommandError(
                    f"no node answers at {api.base_url} (is it running? `tssnode cluster "
                    "status` or `tssnode run`)"
                ) from None
    except CommandError as exc:
        print(f"tssnode {command}: {exc.message}", file=sys.stderr)
        return exc.code
    except ApiError as exc:
        print(f"tssnode {command}: {exc.message} (HTTP {exc.status})", file=sys.stderr)
        return 1
    except (ApiUnavailable, OSError) as exc:
        print(f"tssnode {command}: {exc}", file=sys.stderr)
        return 1


def _emit(args: argparse.Namespace, data: Any, text: Callable[[], str]) -> None:
    """`data` as one JSON document (--json), else as text for people."""
    if args.json:
        print_json(data)
    else:
        print(text())


def _accepted(out: dict[str, Any]) -> str:
    return kv([(k.replace("_", " "), fmt(v)) for k, v in out.items()])


def _client_command(command: str, args: argparse.Namespace, api: ApiClient) -> int:
    if command == "status":
        status = api.get("/status")
        _emit(args, status, lambda: kv(status_rows(status)))
    elif command == "validators":
        validators = api.get("/validators")
        _emit(args, validators, lambda: validators_table(validators))
    elif command == "blocks":
        if args.start is not None:
            start = args.start
        else:
            height = int(api.get("/status").get("height") or 0)
            start = max(1, height - args.limit + 1)
        blocks = api.get("/blocks", **{"from": start, "limit": args.limit})
        blocks = sorted(blocks, key=lambda b: int(b.get("height") or 0), reverse=True)
        _emit(args, blocks, lambda: blocks_table(blocks) if blocks else "no blocks yet")
    elif command == "keys":
        if args.key_id:
            key = get_or_none(api, f"/keys/{args.key_id}")
            if key is None:
                raise CommandError(f"unknown key id {args.key_id}")
            _emit(args, key, lambda: kv(key_rows(key)))
        else:
            keys = _sort_keys(api.get("/keys"))
            none = "no keys yet (`tssnode keygen` asks for one)"
            _emit(args, keys, lambda: keys_table(keys) if keys else none)
    elif command == "signatures":
        if args.signature_id:
            sig = get_or_none(api, f"/signatures/{args.signature_id}")
            if sig is None:
                raise CommandError(f"unknown signature id {args.signature_id}")
            _emit(args, sig, lambda: kv(signature_rows(sig)))
        else:
            sigs = _list_signatures(api, args.key_id, args.limit)
            none = "no signatures in the ledger yet"
            _emit(args, sigs, lambda: signatures_table(sigs) if sigs else none)
    elif command == "keygen":
        request: dict[str, Any] = {"threshold": args.threshold, "parties": None}
        if args.parties:
            request["parties"] = [p for group in args.parties for p in group]
        if args.single_signer:
            request["single_signer"] = True
        out = api.post("/keygen", request)
        if args.no_wait:
            _emit(args, out, lambda: _accepted(out))
            return 0
        key = _wait(api, "key", out["key_id"], args.timeout)
        _emit(args, key, lambda: kv(key_rows(key)))
        if key.get("status") != "active":
            print(f"tssnode keygen: the key failed: {_failure(key)}", file=sys.stderr)
            return 1
    elif command == "sign":
        body: dict[str, Any] = {"key_id": args.key_id, "hash": args.hash}
        if args.path is not None:
            body["path"] = args.path
        if args.message is not None:
            body["message"] = args.message
        else:
            body["message_hex"] = args.message_hex
        out = api.post("/sign", body)
        if args.no_wait:
            _emit(args, out, lambda: _accepted(out))
            return 0
        sig = _wait(api, "signature", out["signature_id"], args.timeout)
        _emit(args, sig, lambda: kv(signature_rows(sig)))
        if sig.get("status") != "done":
            print(f"tssnode sign: the signature failed: {_failure(sig)}", file=sys.stderr)
            return 1
    return 0


def _wait(api: ApiClient, kind: str, ident: str, timeout: float) -> Any:
    later = "tssnode keys" if kind == "key" else "tssnode signatures"
    try:
        return follow(api, kind, ident, timeout=timeout)
    except WaitTimeout as exc:
        raise CommandError(
            f"{exc.message}; the request stays accepted: `{later} {ident}` shows it later"
        ) from None
    except KeyboardInterrupt:
        raise CommandError(
            f"interrupted; the request stays accepted: `{later} {ident}` shows it later", 130
        ) from None


def cmd_status(argv: Sequence[str]) -> int:
    return cmd_client("status", argv)


def cmd_validators(argv: Sequence[str]) -> int:
    return cmd_client("validators", argv)


def cmd_keys(argv: Sequence[str]) -> int:
    return cmd_client("keys", argv)


def cmd_keygen(argv: Sequence[str]) -> int:
    return cmd_client("keygen", argv)


def cmd_sign(argv: Sequence[str]) -> int:
    return cmd_client("sign", argv)


def cmd_signatures(argv: Sequence[str]) -> int:
    return cmd_client("signatures", argv)


def cmd_blocks(argv: Sequence[str]) -> int:
    return cmd_client("blocks", argv)
