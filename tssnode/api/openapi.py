"""The OpenAPI 3.1 description of the control API (request schemas from the pydantic
models that validate them, so the two cannot drift apart)."""

from __future__ import annotations

from functools import cache
from typing import Any

import tssnode

_JSON = {"application/json": {"schema": {"type": "object"}}}
_LIST = {"application/json": {"schema": {"type": "array", "items": {"type": "object"}}}}


def _op(
    summary: str,
    *,
    body: Any = None,
    ok: int = 200,
    many: bool = False,
    params: list[dict[str, Any]] | None = None,
    result: dict[str, Any] | None = None,
) -> dict[str, Any]:
    content = {"application/json": {"schema": result}} if result else _LIST if many else _JSON
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {
            str(ok): {"description": "OK", "content": content},
            "400": {"description": "bad request"},
            "401": {"description": "missing or wrong bearer token"},
            "404": {"description": "not found"},
            "409": {"description": "conflicts with the node's state"},
            "422": {"description": "invalid request body"},
        },
    }
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if params:
        op["parameters"] = params
    return op


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _query(name: str, kind: str = "string", required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": {"type": kind}}


_STR = {"type": "string"}
_INT = {"type": "integer"}
#: GET /status (docs/api.md)
STATUS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "peer_id": _STR,
        "validator_key": _STR,
        "network": _STR,
        "chain_id": _STR,
        "height": _INT,
        "view": _INT,
        "primary": _STR,
        "is_primary": {"type": "boolean"},
        "peers_connected": _INT,
        "validators": _INT,
        "version": _STR,
        "uptime_s": {"type": "number"},
        "addrs": {"type": "array", "items": _STR},
        "last_block_age_s": {
            "type": "number",
            "description": "seconds since this node last saw a block commit (or started)",
        },
        "pending_requests": {
            "type": "integer",
            "description": "transactions waiting to be ordered into a block",
        },
        "view_change": {"type": "boolean", "description": "a PBFT view change is under way"},
        "validators_online": _INT,
        "quorum": {"type": "integer", "description": "validators needed to commit (n − f)"},
        "stalled": {
            "type": "boolean",
            "description": "requests waiting (or a view change) and no block for "
            "[ledger] stall_after seconds",
        },
        "below_quorum": {"type": "boolean"},
        "liveness": {
            "type": ["string", "null"],
            "description": "why the ledger cannot commit (stalled or below quorum), or null",
        },
        "warnings": {
            "type": "array",
            "items": _STR,
            "description": "what is unsafe about this node, one sentence each, e.g. "
            "'vault key stored in the data directory (insecure_local_key)'",
        },
    },
}


@cache
def openapi_document() -> dict[str, Any]:
    from tssnode.api.app import (
        DeriveBody,
        JoinVoteBody,
        KeygenBody,
        PresignBody,
        RefreshBody,
        SignBody,
    )

    paths: dict[str, Any] = {
        "/health": {
            "get": {
                "summary": "200 while the ledger can commit; 503 with a reason when it is "
                "stalled or below quorum (no token needed)",
                "responses": {
                    "200": {"description": "healthy", "content": _JSON},
                    "503": {"description": "stalled or below quorum", "content": _JSON},
                },
            }
        },
        "/health/live": {
            "get": {
                "summary": "200 whenever the API answers (no token needed)",
                "responses": {"200": {"description": "the process serves", "content": _JSON}},
            }
        },
        "/status": {
            "get": _op(
                "peer id, network, height, view, primary, peers, version, warnings",
                result=STATUS_SCHEMA,
            )
        },
        "/validators": {"get": _op("the validator set from the ledger", many=True)},
        "/validators/join": {
            "post": _op(
                "vote to add the validator whose join request this is",
                body=JoinVoteBody.model_json_schema(),
                ok=202,
            )
        },
        "/join-request": {"get": _op("this node's request to become a validator")},
        "/peers": {"get": _op("connected peers with address, latency, last seen", many=True)},
        "/keygen": {
            "post": _op(
                "request a keygen (a ledger transaction)",
                body=KeygenBody.model_json_schema(),
                ok=202,
            )
        },
        "/keys": {"get": _op("every group key", many=True)},
        "/keys/{key_id}": {
            "get": _op(
                "one key: status, public key, threshold, parties, addresses",
                params=[_path("key_id")],
            )
        },
        "/keys/{key_id}/refresh": {
            "post": _op(
                "request a key refresh (optional body: move the key to other validators)",
                body=RefreshBody.model_json_schema(),
                ok=202,
                params=[_path("key_id")],
            )
        },
        "/keys/{key_id}/derive": {
            "post": _op(
                "a non-hardened BIP-32 child",
                body=DeriveBody.model_json_schema(),
                params=[_path("key_id")],
            )
        },
        "/keys/{key_id}/presign": {
            "post": _op(
                "top up presignatures",
                body=PresignBody.model_json_schema(),
                ok=202,
                params=[_path("key_id")],
            )
        },
        "/sign": {"post": _op("request a signature", body=SignBody.model_json_schema(), ok=202)},
        "/signatures/{sig_id}": {
            "get": _op("status, digest, r, s, v, signers, height, blame", params=[_path("sig_id")])
        },
        "/sessions": {"get": _op("running and recent protocol sessions", many=True)},
        "/sessions/{session_id}": {"get": _op("one session", params=[_path("session_id")])},
        "/blocks": {
            "get": _op(
                "blocks", many=True, params=[_query("from", "integer"), _query("limit", "integer")]
            )
        },
        "/blocks/{height}": {
            "get": _op("one block with its commit certificate", params=[_path("height")])
        },
        "/tx/{tx_hash}": {"get": _op("one transaction", params=[_path("tx_hash")])},
        "/events": {
            "get": {
                "summary": "server-sent events: everything the node does",
                "parameters": [_query("since", "integer")],
                "responses": {"200": {"description": "text/event-stream"}},
            }
        },
        "/start": {"post": _op("(original project) keygen over all validators", ok=202)},
        "/broadcast": {"post": _op("(original project) gossip a custom message", ok=202)},
        "/direct-message": {
            "post": _op(
                "(original project) send a custom message to a peer",
                ok=202,
                params=[_query("id", required=True)],
            )
        },
        "/get-message": {
            "get": _op(
                "(original project) broadcasts received for a round",
                many=True,
                params=[_query("roundId", required=True)],
            )
        },
        "/get-direct-message": {
            "get": _op(
                "(original project) direct messages received for a round",
                many=True,
                params=[_query("roundId", required=True)],
            )
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "tssnode control API", "version": tssnode.__version__},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": paths,
    }
