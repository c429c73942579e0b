"""The HTTP control API (Starlette, served by hypercorn's trio worker inside the node).

JSON in and out; every route but `/health` needs `Authorization: Bearer <token>` with the
token the node wrote to `<data-dir>/api.token`. Bad input gets a 4xx with
`{"error": "..."}` saying what is wrong; nothing a client sends can crash the node, and no
secret ever appears in a response. `/openapi.json` describes every route.

Every shape is a model of `tssnode.schema`: request bodies are validated with its `*Body`
models, and every JSON answer (and every event) goes out through its response model
(`_one`, `_many`, `_event_data`), so what the node sends is what the schema, the OpenAPI
document and the clients say.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import re
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

import trio
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tssnode import schema
from tssnode.api.facade import NodeFacade, RequestRejected
from tssnode.api.openapi import openapi_document
from tssnode.schema import (
    HEX,
    MAX_BODY,
    PEER_ID,
    BridgeSetupBody,
    DepositAddressBody,
    DeriveBody,
    JoinVoteBody,
    KeygenBody,
    PresignBody,
    RefreshBody,
    ReleaseSetupBody,
    SignBody,
)

__all__ = [
    "HEX",
    "MAX_BODY",
    "PEER_ID",
    "DeriveBody",
    "JoinVoteBody",
    "KeygenBody",
    "Limits",
    "PresignBody",
    "RefreshBody",
    "SignBody",
    "build_app",
]

log = logging.getLogger("tssnode.api")
#: the event kinds `GET /events?kind=` may ask for
EVENT_KINDS = frozenset(schema.event_models())

B = TypeVar("B", bound=BaseModel)

#: ids in paths: a key id (16 bytes) or a request / signature / session id (32 bytes), hex
PATH_ID = re.compile(r"^(?:[0-9a-fA-F]{32}|[0-9a-fA-F]{64})$")
#: a block height in a path: ASCII digits that fit the ledger's u64 heights
HEIGHT = re.compile(r"^[0-9]{1,19}$")
MAX_HEIGHT = 2**63 - 1


class BearerAuth(BaseHTTPMiddleware):
    def __init__(self, app: Any, token: str) -> None:
        super().__init__(app)
        self.expected = f"Bearer {token}".encode()

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        if request.url.path in ("/health", "/health/live"):
            return await call_next(request)
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, self.expected):
            return _error(401, "missing or wrong bearer token")
        return await call_next(request)


def _error(status: int, message: str) -> JSONResponse:
    return _one(schema.Error, {"error": message}, status)


def _one(model: type[schema.Response], value: Any, status: int = 200) -> JSONResponse:
    """`value` (what the node returned) sent as its response model, serialised with exactly
    the fields it has. A model the node built was validated as it was built (the node
    adds fields to one only by validating it again, `node.views._with`); anything else is
    validated here (a node that breaks the schema is a bug, answered with the 500 of
    `internal`)."""
    if type(value) is not model:
        value = model.model_validate(value)
    return JSONResponse(value.to_json(), status_code=status)


def _many(model: type[schema.Response], values: Any, status: int = 200) -> JSONResponse:
    """A list of `model`s, as `_one` (in one pass: `GET /blocks` lists up to 500)."""
    many = _list_of(model)
    if not all(type(v) is model for v in values):
        values = many.validate_python(values, strict=True)
    return JSONResponse(many.dump_python(values, **_SENT), status_code=status)


@cache
def _list_of(model: type[schema.Response]) -> TypeAdapter[list[Any]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]


#: how `schema.Response.to_json` dumps a model
_SENT: dict[str, Any] = {"mode": "json", "by_alias": True, "exclude_unset": True}


async def _body(request: Request) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed `MAX_BODY`: by
    its Content-Length before reading anything, or while a chunked body streams in."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isascii() or not declared.isdigit():
            raise RequestRejected(400, "Content-Length is not a number")
        if int(declared) > MAX_BODY:
            raise RequestRejected(413, "request body larger than 1 MiB")
    chunks, size = [], 0
    async with aclosing(request.stream()) as stream:
        async for chunk in stream:
            size += len(chunk)
            if size > MAX_BODY:
                raise RequestRejected(413, "request body larger than 1 MiB")
            chunks.append(chunk)
    return b"".join(chunks)


def _check_text(value: Any) -> None:
    """Every string in decoded JSON is valid Unicode (JSON can spell a lone surrogate,
    "\\ud800", which no UTF-8 encoder takes)."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if not v.isascii():
                try:
                    v.encode()
                except UnicodeEncodeError:
                    why = "a string in the body is not valid Unicode"
                    raise RequestRejected(400, why) from None
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)


#: the deepest nesting a request body may have (ours are 2 deep); checked before parsing
MAX_NESTING = 32
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def _too_deep(raw: bytes) -> bool:
    """Do the arrays and objects of this JSON text nest deeper than `MAX_NESTING`
    (brackets inside strings left out)?"""
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    depth = 0
    for c in brackets:
        depth += 1 if c in b"[{" else -1
        if depth > MAX_NESTING:
            return True
    return False


async def _json(request: Request, model: type[B], *, optional: bool = False) -> B:
    raw = await _body(request)
    # The parser recurses once per level: with a recursion limit raised by some library
    # (py_ecc, which web3 imports, sets it to 100,000) a deep body overflows the C stack
    # and kills the process instead of raising RecursionError. Refuse it before parsing.
    if _too_deep(raw):
        raise RequestRejected(400, "request body is nested too deeply")
    try:
        data = json.loads(raw or (b"{}" if optional else b"null"))
    except RecursionError:
        raise RequestRejected(400, "request body is nested too deeply") from None
    except ValueError:
        raise RequestRejected(400, "request body is not JSON") from None
    if not isinstance(data, dict):
        raise RequestRejected(400, "request body must be a JSON object")
    _check_text(data)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise RequestRejected(422, f"{where}: {first['msg']}") from None


def _path_id(request: Request, name: str, what: str) -> str:
    value = str(request.path_params[name])
    if not PATH_ID.match(value):
        raise RequestRejected(400, f"{what} is 32 or 64 hex characters")
    return value.lower()


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"-?[0-9]{1,19}", raw):  # ASCII digits only (int() takes "٣")
        raise RequestRejected(400, f"query parameter {name} must be an integer")
    value = int(raw)
    if not low <= value <= high:
        raise RequestRejected(400, f"query parameter {name} must be in [{low}, {high}]")
    return value


#: a deposit's path parameter: txid (as Bitcoin Core shows it) and output index
OUTPOINT = re.compile(r"^([0-9a-fA-F]{64}):([0-9]{1,10})$")
TO_PARAM = re.compile(r"^(0x)?[0-9a-fA-F]{40}$")


def _to_param(request: Request) -> str | None:
    """`?to=0x…`: an EVM address (20 bytes of hex)."""
    raw = request.query_params.get("to")
    if raw is not None and not TO_PARAM.match(raw):
        raise RequestRejected(400, "query parameter to is an EVM address (40 hex characters)")
    return raw


def _kinds_param(request: Request) -> list[str] | None:
    """`?kind=a,b`: only events of these kinds (each one the schema knows)."""
    raw = request.query_params.get("kind")
    if raw is None:
        return None
    kinds = raw.split(",")
    unknown = [k for k in kinds if k not in EVENT_KINDS]
    if unknown:
        raise RequestRejected(400, f"query parameter kind: unknown event kind {unknown[0][:40]!r}")
    return kinds


def _found(model: type[schema.Response], value: Any, what: str) -> JSONResponse:
    if value is None:
        raise RequestRejected(404, f"unknown {what}")
    return _one(model, value)


def _event_data(event: dict[str, Any]) -> str:
    """An event's `data:` line, through its model (`schema.Event`). One that breaks the
    schema is a bug: logged, and sent as it is rather than ending the reader's stream."""
    try:
        return json.dumps(schema.parse_event(event).to_json())
    except ValidationError as exc:
        log.error("event %s does not fit its schema: %s", event.get("kind"), exc)
        return json.dumps(event)


@dataclass(frozen=True)
class Limits:
    """How much of the node the control API may take (`[api]` in the config). The API,
    gossip and PBFT share one trio loop: a client that floods the API must slow itself,
    not the network (issue 13)."""

    #: requests served at once (the others wait up to `queue_wait` seconds, then 429)
    max_concurrent: int = 8
    queue_wait: float = 2.0
    #: sustained requests per second per client address, and the burst above it
    rate: float = 100.0
    burst: int = 200
    #: open `/events` streams at once
    max_streams: int = 16


#: Never throttled: a health check must answer even while clients flood the API.
UNTHROTTLED = frozenset({"/health", "/health/live"})
_MAX_CLIENTS = 1024


class _Bucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens, self.stamp = tokens, stamp


class Throttle:
    """ASGI middleware: a token bucket per client address, a cap on requests in flight
    and on open event streams. What is over the limit gets `429` with `Retry-After` at
    once, before any work is done for it; each refusal is counted in `refused`."""

    def __init__(self, app: ASGIApp, limits: Limits, refused: Counter[str]) -> None:
        self.app, self.limits = app, limits
        self.slots = trio.CapacityLimiter(limits.max_concurrent)
        self.buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self.streams = 0
        self.refused = refused

    def _take(self, client: str) -> float:
        """0 if `client` may go now (a token taken), else the seconds until it may."""
        now, lim = trio.current_time(), self.limits
        b = self.buckets.pop(client, None) or _Bucket(float(lim.burst), now)
        b.tokens = min(float(lim.burst), b.tokens + (now - b.stamp) * lim.rate)
        b.stamp = now
        self.buckets[client] = b  # most recent last
        while len(self.buckets) > _MAX_CLIENTS:
            self.buckets.popitem(last=False)
        if b.tokens >= 1.0:
            b.tokens -= 1.0
            return 0.0
        return (1.0 - b.tokens) / lim.rate

    async def _refuse(self, send: Send, why: str, retry_after: float) -> None:
        self.refused[why] += 1
        response = _error(429, f"too many requests: {why}")
        response.headers["retry-after"] = str(max(1, math.ceil(retry_after)))
        await response({"type": "http"}, _no_receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNTHROTTLED:
            await self.app(scope, receive, send)
            return
        client = scope["client"][0] if scope.get("client") else "?"
        wait = self._take(client)
        if wait > 0:
            await self._refuse(send, "rate limit", wait)
            return
        if scope["path"] == "/events":
            if self.streams >= self.limits.max_streams:
                await self._refuse(send, "event streams", 5.0)
                return
            self.streams += 1
            try:
                await self.app(scope, receive, send)
            finally:
                self.streams -= 1
            return
        acquired = False
        with trio.move_on_after(self.limits.queue_wait):
            await self.slots.acquire()
            acquired = True
        if not acquired:
            await self._refuse(send, "requests in flight", 1.0)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.slots.release()


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def build_app(node: NodeFacade, token: str, limits: Limits | None = None) -> Starlette:
    """The ASGI app for one node."""

    async def health(request: Request) -> Response:
        """200 while the ledger can commit; 503 with the reason when it is stalled or the
        node sees fewer validators than a quorum (`node/liveness.py`)."""
        ok, reason = node.health()
        if ok:
            return _one(schema.Health, {"ok": True})
        return _one(schema.Health, {"ok": False, "reason": reason}, 503)

    async def live(request: Request) -> Response:
        """200 whenever the process serves its API (for "is it up" checks)."""
        return _one(schema.Health, {"ok": True})

    refused: Counter[str] = Counter()

    async def status(request: Request) -> Response:
        return _one(schema.Status, node.status(dict(refused)))

    async def validators(request: Request) -> Response:
        return _many(schema.Validator, node.validators())

    async def peers(request: Request) -> Response:
        return _many(schema.Peer, node.peers())

    async def keygen(request: Request) -> Response:
        body = await _json(request, KeygenBody)
        return _one(
            schema.KeyAccepted,
            await node.request_keygen(body.threshold, body.parties, body.purpose),
            202,
        )

    async def keys(request: Request) -> Response:
        return _many(schema.Key, node.keys())

    async def key(request: Request) -> Response:
        return _found(schema.Key, node.key(_path_id(request, "key_id", "a key id")), "key id")

    async def refresh(request: Request) -> Response:
        key_id = _path_id(request, "key_id", "a key id")
        body = await _json(request, RefreshBody, optional=True)
        result = await node.request_refresh(key_id, body.parties, body.threshold)
        return _one(schema.KeyAccepted, result, 202)

    async def join_request(request: Request) -> Response:
        return _one(schema.JoinRequest, node.join_request())

    async def vote_join(request: Request) -> Response:
        body = await _json(request, JoinVoteBody)
        return _one(schema.JoinVoteAccepted, await node.vote_join(body.request), 202)

    async def derive(request: Request) -> Response:
        key_id = _path_id(request, "key_id", "a key id")
        body = await _json(request, DeriveBody)
        return _one(schema.Derived, node.derive(key_id, body.path))

    async def presign(request: Request) -> Response:
        key_id = _path_id(request, "key_id", "a key id")
        body = await _json(request, PresignBody)
        return _one(schema.KeyAccepted, await node.request_presign(key_id, body.count), 202)

    # -- the bridge ---------------------------------------------------------------------------
    async def bridge_info(request: Request) -> Response:
        return _one(schema.BridgeInfo, node.bridge_info())

    async def bridge_setup(request: Request) -> Response:
        body = await _json(request, BridgeSetupBody)
        result = await node.request_bridge_setup(body.model_dump())
        return _one(schema.BridgeSetupAccepted, result, 202)

    async def release_setup(request: Request) -> Response:
        body = await _json(request, ReleaseSetupBody)
        result = await node.request_release_setup(body.model_dump())
        return _one(schema.BridgeSetupAccepted, result, 202)

    async def releases(request: Request) -> Response:
        return _many(schema.Release, node.releases())

    async def release(request: Request) -> Response:
        raw = str(request.path_params["burn_nonce"])
        if not raw.isdigit() or len(raw) > 20 or int(raw) >= 2**64:
            raise RequestRejected(400, "a burn nonce is a whole number below 2^64")
        return _found(schema.Release, node.release(int(raw)), "burn nonce")

    async def deposit_address(request: Request) -> Response:
        body = await _json(request, DepositAddressBody)
        view, new = await node.request_deposit_address(body.to, body.nonce, body.payload)
        return _one(schema.DepositAddress, view, 202 if new else 200)

    async def deposit_addresses(request: Request) -> Response:
        return _many(schema.DepositAddress, node.deposit_addresses(_to_param(request)))

    async def deposits(request: Request) -> Response:
        return _many(schema.Deposit, node.deposits(_to_param(request)))

    async def deposit(request: Request) -> Response:
        raw = str(request.path_params["outpoint"])
        m = OUTPOINT.match(raw)
        if m is None:
            raise RequestRejected(400, "a deposit is <txid: 64 hex>:<vout>")
        vout = int(m.group(2))
        if vout >= 2**32:
            raise RequestRejected(400, "an output index is below 2^32")
        found = node.deposit(m.group(1).lower(), vout)
        return _found(schema.Deposit, found, "deposit")

    async def sign(request: Request) -> Response:
        body = await _json(request, SignBody)
        result = await node.request_sign(body.key_id, body.message_bytes(), body.hash, body.path)
        return _one(schema.SignAccepted, result, 202)

    async def signature(request: Request) -> Response:
        sig_id = _path_id(request, "sig_id", "a signature id")
        return _found(schema.Signature, node.signature(sig_id), "signature id")

    async def sessions(request: Request) -> Response:
        return _many(schema.Session, node.sessions())

    async def session(request: Request) -> Response:
        session_id = _path_id(request, "session_id", "a session id")
        return _found(schema.Session, node.session(session_id), "session id")

    async def blocks(request: Request) -> Response:
        start = _int_param(request, "from", 0, 0, 2**62)
        limit = _int_param(request, "limit", 20, 1, 500)
        return _many(schema.Block, node.blocks(start, limit))

    async def block(request: Request) -> Response:
        raw = request.path_params["height"]
        if not HEIGHT.match(raw) or int(raw) > MAX_HEIGHT:
            raise RequestRejected(400, f"a block height is an integer in [0, {MAX_HEIGHT}]")
        return _found(schema.Block, node.block(int(raw)), "block height")

    async def tx(request: Request) -> Response:
        tx_hash = request.path_params["tx_hash"]
        if not HEX.match(tx_hash) or len(tx_hash.removeprefix("0x")) != 64:
            raise RequestRejected(400, "a transaction hash is 32 bytes of hex")
        tx = node.transaction(tx_hash.removeprefix("0x").lower())
        return _found(schema.Transaction, tx, "transaction")

    async def events(request: Request) -> Response:
        since = _int_param(request, "since", -1, -1, 2**62)
        kinds = _kinds_param(request)

        async def stream() -> AsyncIterator[bytes]:
            subscription = node.events.subscribe(None if since < 0 else since, kinds)
            async with aclosing(subscription) as evs:
                async for ev in evs:
                    data = _event_data(ev.to_json())
                    yield f"id: {ev.seq}\nevent: {ev.kind}\ndata: {data}\n\n".encode()

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"cache-control": "no-store"}
        )

    # -- the original project's endpoints --------------------------------------------------------
    async def legacy_start(request: Request) -> Response:
        n = len(node.validators())
        return _one(schema.KeyAccepted, await node.request_keygen(n // 2, None), 202)

    async def legacy_broadcast(request: Request) -> Response:
        return _one(schema.LegacySent, await node.legacy_broadcast(await _raw(request)), 202)

    async def legacy_direct(request: Request) -> Response:
        peer = request.query_params.get("id")
        if not peer:
            raise RequestRejected(400, "query parameter id (the peer id) is required")
        return _one(schema.LegacySent, await node.legacy_direct(peer, await _raw(request)), 202)

    async def legacy_get(request: Request, direct: bool) -> Response:
        round_id = request.query_params.get("roundId")
        if not round_id:
            raise RequestRejected(400, "query parameter roundId is required")
        return _many(schema.LegacyMessage, node.legacy_messages(round_id, direct))

    async def openapi(request: Request) -> Response:
        return _one(schema.OpenApiDocument, openapi_document())

    def guarded(
        fn: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def handler(request: Request) -> Response:
            try:
                return await fn(request)
            except RequestRejected as exc:
                return _error(exc.status, exc.message)

        return handler

    routes = [
        Route("/health", health),
        Route("/health/live", live),
        Route("/openapi.json", openapi),
        Route("/status", guarded(status)),
        Route("/validators", guarded(validators)),
        Route("/validators/join", guarded(vote_join), methods=["POST"]),
        Route("/join-request", guarded(join_request)),
        Route("/peers", guarded(peers)),
        Route("/keygen", guarded(keygen), methods=["POST"]),
        Route("/keys", guarded(keys)),
        Route("/keys/{key_id}", guarded(key)),
        Route("/keys/{key_id}/refresh", guarded(refresh), methods=["POST"]),
        Route("/keys/{key_id}/derive", guarded(derive), methods=["POST"]),
        Route("/keys/{key_id}/presign", guarded(presign), methods=["POST"]),
        Route("/sign", guarded(sign), methods=["POST"]),
        Route("/bridge", guarded(bridge_info)),
        Route("/bridge/setup", guarded(bridge_setup), methods=["POST"]),
        Route("/bridge/deposit-address", guarded(deposit_address), methods=["POST"]),
        Route("/bridge/addresses", guarded(deposit_addresses)),
        Route("/bridge/deposits", guarded(deposits)),
        Route("/bridge/deposits/{outpoint}", guarded(deposit)),
        Route("/bridge/release-setup", guarded(release_setup), methods=["POST"]),
        Route("/bridge/releases", guarded(releases)),
        Route("/bridge/releases/{burn_nonce}", guarded(release)),
        Route("/signatures/{sig_id}", guarded(signature)),
        Route("/sessions", guarded(sessions)),
        Route("/sessions/{session_id}", guarded(session)),
        Route("/blocks", guarded(blocks)),
        Route("/blocks/{height}", guarded(block)),
        Route("/tx/{tx_hash}", guarded(tx)),
        Route("/events", guarded(events)),
        Route("/start", guarded(legacy_start), methods=["POST"]),
        Route("/broadcast", guarded(legacy_broadcast), methods=["POST"]),
        Route("/direct-message", guarded(legacy_direct), methods=["POST"]),
        Route("/get-message", guarded(lambda r: legacy_get(r, False))),
        Route("/get-direct-message", guarded(lambda r: legacy_get(r, True))),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return _error(exc.status_code, exc.detail)

    async def internal(request: Request, exc: Exception) -> Response:
        """A bug, not the client's fault: logged with its traceback, answered without."""
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return _error(500, "internal error (logged by the node)")

    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(Throttle, limits=limits or Limits(), refused=refused),
            Middleware(BearerAuth, token=token),
        ],
        exception_handlers={HTTPException: not_found, Exception: internal},
    )
    # "/signatures/%2e%2e%2f" must be a 4xx, not a redirect to another path
    app.router.redirect_slashes = False
    return app


async def _raw(request: Request) -> bytes:
    raw = await _body(request)
    if not raw:
        raise RequestRejected(400, "empty message body")
    return raw
