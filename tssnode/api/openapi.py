"""The OpenAPI 3.1 description of the control API, generated from `tssnode.schema`: the
request bodies from the models that validate them (inline, with their properties), every
response body and event from the models the routes send them through
(`components/schemas`, by `$ref`). The document and the routes cannot drift apart.

It imports the schema only (never `tssnode.api.app`, which imports it to serve it)."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel, TypeAdapter

import tssnode
from tssnode import schema

_REF = "#/components/schemas/{model}"

#: Response bodies by component name (a model's own name, or a name given here).
RESPONSES: dict[str, Any] = {
    "Error": schema.Error,
    "Health": schema.Health,
    "Status": schema.Status,
    "Validator": schema.Validator,
    "Peer": schema.Peer,
    "Key": schema.Key,
    "KeyAccepted": schema.KeyAccepted,
    "Derived": schema.Derived,
    "SignAccepted": schema.SignAccepted,
    "Signature": schema.Signature,
    "Session": schema.Session,
    "Block": schema.Block,
    "Transaction": schema.Transaction,
    "JoinRequest": schema.JoinRequest,
    "JoinVoteAccepted": schema.JoinVoteAccepted,
    "LegacySent": schema.LegacySent,
    "LegacyMessage": schema.LegacyMessage,
    "OpenApiDocument": schema.OpenApiDocument,
    "BridgeInfo": schema.BridgeInfo,
    "BridgeSetupAccepted": schema.BridgeSetupAccepted,
    "DepositAddress": schema.DepositAddress,
    "Deposit": schema.Deposit,
    "Release": schema.Release,
    "Event": schema.Event,
}


@cache
def component_schemas() -> dict[str, Any]:
    """`components/schemas`: every response model, the models they hold, and `Event` (the
    union of every event, by `kind`)."""
    inputs = [(name, "serialization", TypeAdapter(tp)) for name, tp in RESPONSES.items()]
    refs, defs = TypeAdapter.json_schemas(inputs, ref_template=_REF)  # type: ignore[arg-type]
    out: dict[str, Any] = dict(defs.get("$defs", {}))
    for (name, _mode), sch in refs.items():
        if sch != {"$ref": _REF.format(model=name)}:
            out[name] = sch  # (a union, or a model registered under another name)
    return dict(sorted(out.items()))


def ref(name: str) -> dict[str, Any]:
    if name not in RESPONSES:
        raise KeyError(name)
    return {"$ref": _REF.format(model=name)}


def _json(sch: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": sch}}


_ERROR = _json(ref("Error"))
#: What a route may answer besides its success, each with `{"error": "..."}`.
_ERRORS = {
    "400": "bad request (a path id, a query parameter, a body that is not a JSON object)",
    "401": "missing or wrong bearer token",
    "404": "not found",
    "409": "conflicts with the node's state",
    "413": "request body larger than 1 MiB",
    "422": "invalid request body",
    "429": "too many requests (Retry-After says when to send it again)",
    "500": "internal error (a bug: the node logs it)",
    "503": "not accepted: the node sees fewer validators than a quorum",
}


def _op(
    summary: str,
    result: dict[str, Any],
    *,
    body: type[BaseModel] | None = None,
    ok: int = 200,
    params: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {
            str(ok): {"description": "OK" if ok == 200 else "accepted", "content": _json(result)},
            **{code: {"description": why, "content": _ERROR} for code, why in _ERRORS.items()},
        },
    }
    if body is not None:
        op["requestBody"] = {
            "required": body is not schema.RefreshBody,
            "content": _json(body.model_json_schema()),
        }
    if params:
        op["parameters"] = params
    return op


def _list(name: str) -> dict[str, Any]:
    return {"type": "array", "items": ref(name)}


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _query(name: str, kind: str = "string", required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": {"type": kind}}


@cache
def openapi_document() -> dict[str, Any]:
    health = {
        "200": {"description": "the ledger can commit", "content": _json(ref("Health"))},
        "503": {"description": "stalled or below quorum", "content": _json(ref("Health"))},
    }
    paths: dict[str, Any] = {
        "/health": {
            "get": {
                "summary": "200 while the ledger can commit; 503 with a reason when it is "
                "stalled or below quorum (no token needed)",
                "security": [],
                "responses": health,
            }
        },
        "/health/live": {
            "get": {
                "summary": "200 whenever the API answers (no token needed)",
                "security": [],
                "responses": {
                    "200": {"description": "the process serves", "content": _json(ref("Health"))}
                },
            }
        },
        "/openapi.json": {"get": _op("this document", ref("OpenApiDocument"))},
        "/status": {
            "get": _op(
                "peer id, network, height, view, primary, peers, version, liveness, warnings",
                ref("Status"),
            )
        },
        "/validators": {"get": _op("the validator set from the ledger", _list("Validator"))},
        "/validators/join": {
            "post": _op(
                "vote to add the validator whose join request this is",
                ref("JoinVoteAccepted"),
                body=schema.JoinVoteBody,
                ok=202,
            )
        },
        "/join-request": {
            "get": _op("this node's request to become a validator", ref("JoinRequest"))
        },
        "/peers": {"get": _op("known peers with address, latency, last seen", _list("Peer"))},
        "/keygen": {
            "post": _op(
                "request a keygen (a ledger transaction)",
                ref("KeyAccepted"),
                body=schema.KeygenBody,
                ok=202,
            )
        },
        "/keys": {"get": _op("every group key, and the keygen requests not done", _list("Key"))},
        "/keys/{key_id}": {
            "get": _op(
                "one key: status, public key, threshold, parties, addresses",
                ref("Key"),
                params=[_path("key_id")],
            )
        },
        "/keys/{key_id}/refresh": {
            "post": _op(
                "request a key refresh (optional body: move the key to other validators)",
                ref("KeyAccepted"),
                body=schema.RefreshBody,
                ok=202,
                params=[_path("key_id")],
            )
        },
        "/keys/{key_id}/derive": {
            "post": _op(
                "a non-hardened BIP-32 child",
                ref("Derived"),
                body=schema.DeriveBody,
                params=[_path("key_id")],
            )
        },
        "/keys/{key_id}/presign": {
            "post": _op(
                "top up presignatures",
                ref("KeyAccepted"),
                body=schema.PresignBody,
                ok=202,
                params=[_path("key_id")],
            )
        },
        "/sign": {
            "post": _op("request a signature", ref("SignAccepted"), body=schema.SignBody, ok=202)
        },
        "/bridge": {"get": _op("the bridge's settings in force", ref("BridgeInfo"))},
        "/bridge/setup": {
            "post": _op(
                "vote for the bridge's settings (in force on 2f+1 identical votes)",
                ref("BridgeSetupAccepted"),
                body=schema.BridgeSetupBody,
                ok=202,
            )
        },
        "/bridge/deposit-address": {
            "post": _op(
                "a deposit address for an EVM recipient, recorded in the ledger (200 when it "
                "is there already)",
                ref("DepositAddress"),
                body=schema.DepositAddressBody,
                ok=202,
            )
        },
        "/bridge/addresses": {
            "get": {
                **_op("the recorded deposit addresses", _list("DepositAddress")),
                "parameters": [_query("to")],
            }
        },
        "/bridge/deposits": {
            "get": {
                **_op("the final deposits", _list("Deposit")),
                "parameters": [_query("to")],
            }
        },
        "/bridge/deposits/{outpoint}": {
            "get": _op(
                "one deposit, by txid:vout (txid as Bitcoin Core shows it)",
                ref("Deposit"),
                params=[_path("outpoint")],
            )
        },
        "/bridge/release-setup": {
            "post": _op(
                "vote for the release side's settings (in force on 2f+1 identical votes)",
                ref("BridgeSetupAccepted"),
                body=schema.ReleaseSetupBody,
                ok=202,
            )
        },
        "/bridge/releases": {"get": _op("every burn and its release", _list("Release"))},
        "/bridge/releases/{burn_nonce}": {
            "get": _op("one burn and its release", ref("Release"), params=[_path("burn_nonce")])
        },
        "/signatures/{sig_id}": {
            "get": _op(
                "status, digest, r, s, v, signers, height, blame",
                ref("Signature"),
                params=[_path("sig_id")],
            )
        },
        "/sessions": {"get": _op("running and recent protocol sessions", _list("Session"))},
        "/sessions/{session_id}": {
            "get": _op("one session", ref("Session"), params=[_path("session_id")])
        },
        "/blocks": {
            "get": _op(
                "blocks from a height, transactions summarised",
                _list("Block"),
                params=[_query("from", "integer"), _query("limit", "integer")],
            )
        },
        "/blocks/{height}": {
            "get": _op(
                "one block with its commit certificate and its transactions in full",
                ref("Block"),
                params=[_path("height")],
            )
        },
        "/tx/{tx_hash}": {
            "get": _op("one transaction", ref("Transaction"), params=[_path("tx_hash")])
        },
        "/events": {
            "get": {
                "summary": "server-sent events: everything the node does (`event:` the kind, "
                "`data:` one JSON object of the Event schema, `id:` its seq)",
                "parameters": [_query("since", "integer"), _query("kind", "string")],
                "responses": {
                    "200": {
                        "description": "text/event-stream",
                        "content": {"text/event-stream": {"schema": ref("Event")}},
                    },
                    **{
                        code: {"description": _ERRORS[code], "content": _ERROR}
                        for code in ("400", "401", "429")
                    },
                },
            }
        },
        "/start": {
            "post": _op("(original project) keygen over all validators", ref("KeyAccepted"), ok=202)
        },
        "/broadcast": {
            "post": _op("(original project) gossip a custom message", ref("LegacySent"), ok=202)
        },
        "/direct-message": {
            "post": _op(
                "(original project) send a custom message to a peer",
                ref("LegacySent"),
                ok=202,
                params=[_query("id", required=True)],
            )
        },
        "/get-message": {
            "get": _op(
                "(original project) broadcasts received for a round",
                _list("LegacyMessage"),
                params=[_query("roundId", required=True)],
            )
        },
        "/get-direct-message": {
            "get": _op(
                "(original project) direct messages received for a round",
                _list("LegacyMessage"),
                params=[_query("roundId", required=True)],
            )
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "tssnode control API", "version": tssnode.__version__},
        "components": {
            "schemas": component_schemas(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }
