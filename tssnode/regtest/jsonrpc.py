"""Bitcoin Core's JSON-RPC over HTTP (src/httprpc.cpp, src/rpc/request.cpp), on the
project's HTTP stack: starlette served by hypercorn on trio.

- `POST /` and `POST /wallet/<name>` (one wallet answers both), HTTP basic auth with the
  `-rpcuser`/`-rpcpassword` pair or the cookie's `__cookie__:<hex>`; a wrong password
  waits 250 ms and gets 401 with an empty body, as bitcoind.
- JSON-RPC 1.0 (legacy): `{"result", "error", "id"}`, HTTP 500 for an error (400 for an
  invalid request, 404 for an unknown method). JSON-RPC 2.0 (`"jsonrpc": "2.0"`):
  `{"jsonrpc", "result" | "error", "id"}` with HTTP 200, no reply to a notification.
  A batch (a JSON array) answers with an array and HTTP 200.
- Numbers are read as `Decimal` and amounts written as exact decimals (`50.00000000`).
- Methods run in a worker thread (`trio.to_thread`), one at a time under the node's lock.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
from decimal import Decimal
from typing import Any

import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tssnode.regtest.errors import (
    RPC_INVALID_REQUEST,
    RPC_METHOD_NOT_FOUND,
    RPC_MISC_ERROR,
    RPC_PARSE_ERROR,
    RPCError,
)
from tssnode.regtest.methods import Methods

log = logging.getLogger("tssnode.regtest.rpc")


def dumps(value: Any) -> str:
    """JSON with `Decimal` as a plain number (Core's amounts), compact like Core's."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    if isinstance(value, float):
        return format(value, ".16g")  # UniValue prints doubles with 16 significant digits
    return json.dumps(value)


def _reply(legacy: bool, request_id: Any, result: Any = None, error: RPCError | None = None) -> Any:
    if legacy:
        return {
            "result": None if error else result,
            "error": error.to_json() if error else None,
            "id": request_id,
        }
    out: dict[str, Any] = {"jsonrpc": "2.0"}
    if error:
        out["error"] = error.to_json()
    else:
        out["result"] = result
    out["id"] = request_id
    return out


class Server:
    """Turns HTTP requests into method calls on `Methods`."""

    def __init__(self, methods: Methods, user: str, password: str) -> None:
        self.methods = methods
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self._expected = f"Basic {token}".encode()

    def authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if not header.startswith("Basic "):
            return False
        try:  # normalise the encoding before comparing
            decoded = base64.b64decode(header[6:].strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        given = b"Basic " + base64.b64encode(decoded)
        return hmac.compare_digest(given, self._expected)

    async def handle(self, request: Request) -> Response:
        if not self.authorized(request):
            await trio.sleep(0.25)
            return Response(
                b"", status_code=401, headers={"WWW-Authenticate": 'Basic realm="jsonrpc"'}
            )
        body = await request.body()
        try:
            document = json.loads(body, parse_float=Decimal)
        except (ValueError, UnicodeDecodeError):
            error = RPCError(RPC_PARSE_ERROR, "Parse error")
            return self._response(_reply(True, None, error=error), 500)
        if isinstance(document, list):
            replies = [await self._one(item) for item in document]
            return self._response([r for r, _ in replies if r is not None], 200)
        if not isinstance(document, dict):
            error = RPCError(RPC_PARSE_ERROR, "Top-level object parse error")
            return self._response(_reply(True, None, error=error), 500)
        reply, status = await self._one(document)
        if reply is None:
            return Response(b"", status_code=204)
        return self._response(reply, status)

    @staticmethod
    def _response(document: Any, status: int) -> Response:
        return Response(
            (dumps(document) + "\n").encode(), status_code=status, media_type="application/json"
        )

    async def _one(self, request: Any) -> tuple[Any, int]:
        """(reply or None for a JSON-RPC 2.0 notification, HTTP status if alone)."""
        if not isinstance(request, dict):
            error = RPCError(RPC_INVALID_REQUEST, "Invalid Request object")
            return _reply(True, None, error=error), 400
        legacy = request.get("jsonrpc") != "2.0"
        request_id = request.get("id")
        notification = not legacy and "id" not in request
        method = request.get("method")
        params = request.get("params")
        try:
            if not isinstance(method, str):
                raise RPCError(RPC_INVALID_REQUEST, "Method must be a string")
            if params is not None and not isinstance(params, (list, dict)):
                raise RPCError(RPC_INVALID_REQUEST, "Params must be an array or object")
            result = await trio.to_thread.run_sync(self.methods.call, method, params)
        except RPCError as error:
            if notification:
                return None, 204
            status = 200 if not legacy else 500
            if legacy and error.code == RPC_INVALID_REQUEST:
                status = 400
            elif legacy and error.code == RPC_METHOD_NOT_FOUND:
                status = 404
            return _reply(legacy, request_id, error=error), status
        except Exception as exc:  # a bug: answer like Core's std::exception handler
            log.exception("%s failed", method)
            if notification:
                return None, 204
            failure = RPCError(RPC_MISC_ERROR, str(exc) or type(exc).__name__)
            return _reply(legacy, request_id, error=failure), 500 if legacy else 200
        if notification:
            return None, 204
        return _reply(legacy, request_id, result), 200


def build_app(methods: Methods, user: str, password: str) -> Starlette:
    server = Server(methods, user, password)
    routes = [
        Route("/", server.handle, methods=["POST"]),
        Route("/wallet/{name:path}", server.handle, methods=["POST"]),
    ]
    return Starlette(routes=routes)
