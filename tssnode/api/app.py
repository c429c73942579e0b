"""The HTTP control API (Starlette, served by hypercorn's trio worker inside the node).

JSON in and out; every route but `/health` needs `Authorization: Bearer <token>` with the
token the node wrote to `<data-dir>/api.token`. Bad input gets a 4xx with
`{"error": "..."}` saying what is wrong; nothing a client sends can crash the node, and no
secret ever appears in a response. `/openapi.json` describes every route.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tssnode.api.facade import NodeFacade, RequestRejected
from tssnode.api.openapi import openapi_document

MAX_BODY = 1 << 20  # 1 MiB
HEX = re.compile(r"^(0x)?([0-9a-fA-F]{2})*$")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KeygenBody(_Body):
    threshold: int = Field(ge=0, le=64)
    parties: list[str] | None = None


class SignBody(_Body):
    key_id: str = Field(min_length=1, max_length=128)
    message: str | None = Field(default=None, max_length=MAX_BODY)
    message_hex: str | None = Field(default=None, max_length=2 * MAX_BODY)
    hash: Literal["sha256", "sha256d", "keccak256", "eip191"] = "sha256"
    path: str | None = Field(default=None, max_length=256)

    @model_validator(mode="after")
    def one_message(self) -> SignBody:
        if (self.message is None) == (self.message_hex is None):
            raise ValueError("give exactly one of message and message_hex")
        if self.message_hex is not None and not HEX.match(self.message_hex):
            raise ValueError("message_hex is not hexadecimal")
        return self

    def message_bytes(self) -> bytes:
        if self.message is not None:
            return self.message.encode()
        assert self.message_hex is not None
        return bytes.fromhex(self.message_hex.removeprefix("0x"))


class DeriveBody(_Body):
    path: str = Field(min_length=1, max_length=256)


class PresignBody(_Body):
    count: int = Field(default=1, ge=1, le=100)


class RefreshBody(_Body):
    parties: list[str] | None = Field(default=None, min_length=1, max_length=256)
    threshold: int | None = Field(default=None, ge=0, le=255)


class JoinVoteBody(_Body):
    request: str = Field(min_length=2, max_length=4096, pattern=HEX.pattern)


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
    return JSONResponse({"error": message}, status_code=status)


async def _json(request: Request, model: type[_Body], *, optional: bool = False) -> Any:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise RequestRejected(413, "request body larger than 1 MiB")
    try:
        data = json.loads(raw or (b"{}" if optional else b"null"))
    except ValueError:
        raise RequestRejected(400, "request body is not JSON") from None
    if not isinstance(data, dict):
        raise RequestRejected(400, "request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise RequestRejected(422, f"{where}: {first['msg']}") from None


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise RequestRejected(400, f"query parameter {name} must be an integer") from None
    if not low <= value <= high:
        raise RequestRejected(400, f"query parameter {name} must be in [{low}, {high}]")
    return value


def _found(value: Any, what: str) -> JSONResponse:
    if value is None:
        raise RequestRejected(404, f"unknown {what}")
    return JSONResponse(value)


def build_app(node: NodeFacade, token: str) -> Starlette:
    """The ASGI app for one node."""

    async def health(request: Request) -> Response:
        """200 while the ledger can commit; 503 with the reason when it is stalled or the
        node sees fewer validators than a quorum (`node/liveness.py`)."""
        ok, reason = node.health()
        if ok:
            return JSONResponse({"ok": True})
        return JSONResponse({"ok": False, "reason": reason}, status_code=503)

    async def live(request: Request) -> Response:
        """200 whenever the process serves its API (for "is it up" checks)."""
        return JSONResponse({"ok": True})

    async def status(request: Request) -> Response:
        return JSONResponse(node.status())

    async def validators(request: Request) -> Response:
        return JSONResponse(node.validators())

    async def peers(request: Request) -> Response:
        return JSONResponse(node.peers())

    async def keygen(request: Request) -> Response:
        body = await _json(request, KeygenBody)
        return JSONResponse(await node.request_keygen(body.threshold, body.parties), 202)

    async def keys(request: Request) -> Response:
        return JSONResponse(node.keys())

    async def key(request: Request) -> Response:
        return _found(node.key(request.path_params["key_id"]), "key id")

    async def refresh(request: Request) -> Response:
        body = await _json(request, RefreshBody, optional=True)
        key_id = request.path_params["key_id"]
        return JSONResponse(await node.request_refresh(key_id, body.parties, body.threshold), 202)

    async def join_request(request: Request) -> Response:
        return JSONResponse(node.join_request())

    async def vote_join(request: Request) -> Response:
        body = await _json(request, JoinVoteBody)
        return JSONResponse(await node.vote_join(body.request), 202)

    async def derive(request: Request) -> Response:
        body = await _json(request, DeriveBody)
        return JSONResponse(node.derive(request.path_params["key_id"], body.path))

    async def presign(request: Request) -> Response:
        body = await _json(request, PresignBody)
        return JSONResponse(
            await node.request_presign(request.path_params["key_id"], body.count), 202
        )

    async def sign(request: Request) -> Response:
        body = await _json(request, SignBody)
        result = await node.request_sign(body.key_id, body.message_bytes(), body.hash, body.path)
        return JSONResponse(result, 202)

    async def signature(request: Request) -> Response:
        return _found(node.signature(request.path_params["sig_id"]), "signature id")

    async def sessions(request: Request) -> Response:
        return JSONResponse(node.sessions())

    async def session(request: Request) -> Response:
        return _found(node.session(request.path_params["session_id"]), "session id")

    async def blocks(request: Request) -> Response:
        start = _int_param(request, "from", 0, 0, 2**62)
        limit = _int_param(request, "limit", 20, 1, 500)
        return JSONResponse(node.blocks(start, limit))

    async def block(request: Request) -> Response:
        raw = request.path_params["height"]
        if not raw.isdigit():
            raise RequestRejected(400, "block height must be a non-negative integer")
        return _found(node.block(int(raw)), "block height")

    async def tx(request: Request) -> Response:
        tx_hash = request.path_params["tx_hash"]
        if not HEX.match(tx_hash) or len(tx_hash.removeprefix("0x")) != 64:
            raise RequestRejected(400, "a transaction hash is 32 bytes of hex")
        return _found(node.transaction(tx_hash.removeprefix("0x").lower()), "transaction")

    async def events(request: Request) -> Response:
        since = _int_param(request, "since", -1, -1, 2**62)

        async def stream() -> AsyncIterator[bytes]:
            async with aclosing(node.events.subscribe(None if since < 0 else since)) as evs:
                async for ev in evs:
                    data = json.dumps(ev.to_json())
                    yield f"id: {ev.seq}\nevent: {ev.kind}\ndata: {data}\n\n".encode()

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"cache-control": "no-store"}
        )

    # -- the original project's endpoints --------------------------------------------------------
    async def legacy_start(request: Request) -> Response:
        n = len(node.validators())
        return JSONResponse(await node.request_keygen(n // 2, None), 202)

    async def legacy_broadcast(request: Request) -> Response:
        return JSONResponse(await node.legacy_broadcast(await _raw(request)), 202)

    async def legacy_direct(request: Request) -> Response:
        peer = request.query_params.get("id")
        if not peer:
            raise RequestRejected(400, "query parameter id (the peer id) is required")
        return JSONResponse(await node.legacy_direct(peer, await _raw(request)), 202)

    async def legacy_get(request: Request, direct: bool) -> Response:
        round_id = request.query_params.get("roundId")
        if not round_id:
            raise RequestRejected(400, "query parameter roundId is required")
        return JSONResponse(node.legacy_messages(round_id, direct))

    async def openapi(request: Request) -> Response:
        return JSONResponse(openapi_document())

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

    return Starlette(
        routes=routes,
        middleware=[Middleware(BearerAuth, token=token)],
        exception_handlers={HTTPException: not_found},
    )


async def _raw(request: Request) -> bytes:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise RequestRejected(413, "request body larger than 1 MiB")
    if not raw:
        raise RequestRejected(400, "empty message body")
    return raw
