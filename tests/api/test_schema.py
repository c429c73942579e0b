"""One schema (issue 15): every shape of the control API is a model of `tssnode.schema`.

(a) The OpenAPI document describes a real body for every route: a `$ref` to a component
    with its properties (or a list of them), never a bare `{"type": "object"}`; and every
    route the app serves is in it.
(b) The real answers of a node validate against their models, field for field: four node
    cores in this process (`tests/node/test_core.py`: real ledger services over the
    ledger's memory transport, real sessions and vaults) behind the real Starlette app,
    asked over HTTP (httpx's ASGI transport) for every route while a key is made and a
    message signed; every response fits its model with no field the model does not
    declare, and is the JSON the node built, unchanged. The events the node published
    fit theirs and are sent unchanged.
(c) A model refuses a response that lacks a field it requires or has one of the wrong
    type, and so does the app: a node that breaks the schema gets a 500, not a client
    that reads garbage.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from pydantic import BaseModel, ValidationError

from tssnode import schema
from tssnode.api.app import _event_data, build_app
from tssnode.api.client import ApiError, AsyncApiClient
from tssnode.api.openapi import RESPONSES, openapi_document
from tssnode.bridge.records import p2wpkh_script
from tssnode.bridge.transactions import BurnObserved, DepositObserved
from tssnode.net import peerid
from tssnode.net.admission import Admission
from tssnode.net.peerbook import PeerBook
from tssnode.net.store import MessageStore
from tssnode.node.watch import BitcoinWatch

from ..bridge.test_watcher import FakeChain
from ..node.test_core import _start, _wait, keys  # noqa: F401 (`keys` is a fixture)

TOKEN = "schema-t0ken"


# -- (a) the document --------------------------------------------------------------------------
def _resolve(doc: dict[str, Any], sch: dict[str, Any]) -> dict[str, Any]:
    ref = sch.get("$ref")
    if ref is None:
        return sch
    prefix = "#/components/schemas/"
    assert ref.startswith(prefix), ref
    return _resolve(doc, doc["components"]["schemas"][ref.removeprefix(prefix)])


def _described(doc: dict[str, Any], sch: dict[str, Any]) -> bool:
    """A schema that says what is in the body: an object with properties, a list of such,
    or a union of such."""
    sch = _resolve(doc, sch)
    if sch.get("type") == "array":
        return _described(doc, sch["items"])
    if "oneOf" in sch or "anyOf" in sch:
        return all(_described(doc, s) for s in sch.get("oneOf", sch.get("anyOf")))
    return sch.get("type") == "object" and bool(sch.get("properties")) and "required" in sch


def test_every_route_has_a_real_response_schema() -> None:
    doc = openapi_document()
    assert doc["openapi"] == "3.1.0"
    assert set(RESPONSES) <= set(doc["components"]["schemas"])
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            ok = [code for code in op["responses"] if code.startswith("2")]
            assert ok, (method, path)
            for code, answer in op["responses"].items():
                content = answer.get("content")
                assert content, (method, path, code)
                for media in content.values():
                    sch = media["schema"]
                    assert sch != {"type": "object"}, (method, path, code)
                    assert _described(doc, sch), (method, path, code, sch)
            body = op.get("requestBody")
            if body is not None:  # inline, with its properties (the fuzzer reads them)
                assert body["content"]["application/json"]["schema"]["properties"]
    # every $ref anywhere resolves
    text = json.dumps(doc)
    for name in {part.split('"')[0] for part in text.split('"#/components/schemas/')[1:]}:
        assert name in doc["components"]["schemas"], name


def test_every_route_served_is_described() -> None:
    app = build_app(None, TOKEN)  # type: ignore[arg-type]  (routes only: nothing is asked)
    served = {(m.lower(), r.path) for r in app.routes for m in r.methods - {"HEAD"}}
    doc = openapi_document()["paths"]
    described = {(m, p) for p, ops in doc.items() for m in ops}
    assert served == described


def test_the_openapi_module_does_not_import_the_app() -> None:
    import subprocess
    import sys

    code = "import sys, tssnode.api.openapi; print('tssnode.api.app' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- (b) the real answers ----------------------------------------------------------------------
class InProcessNode:
    """One `NodeCore` as the API's `NodeFacade`, with what the daemon adds from the net
    layer (`NodeFacadeAdapter`) made by the net layer's own classes (peer book, admission,
    message store), so that those parts have their real shapes too."""

    def __init__(self, core: Any, cores: list[Any]) -> None:
        self.core, self.events = core, core.events
        me = core.identity.public_bytes()
        self.book = PeerBook(peerid.from_public_key(me))
        for i, c in enumerate(cores, start=1):
            other = peerid.from_public_key(c.identity.public_bytes())
            self.book.learn(other, [f"/ip4/127.0.0.1/tcp/{4100 + i}"], "genesis")
            if c is not core and i % 2:
                self.book.set_connected(other, True)
                self.book.ping_ok(other, 0.0004)
        validators = [peerid.from_public_key(c.identity.public_bytes()) for c in cores]
        self.admission = Admission(validators, newcomer_slots=4, newcomer_seconds=300.0)
        self.store = MessageStore()
        self.sent = 0

    # what NodeCore answers itself
    def bridge_info(self) -> dict[str, Any]:
        return self.core.bridge_info()

    def deposit_addresses(self, to: str | None = None) -> list[dict[str, Any]]:
        return self.core.deposit_addresses(to)

    def deposits(self, to: str | None = None) -> list[dict[str, Any]]:
        return self.core.deposits(to)

    def deposit(self, txid: str, vout: int) -> dict[str, Any] | None:
        return self.core.deposit(txid, vout)

    async def request_bridge_setup(self, settings: dict[str, Any]) -> dict[str, Any]:
        return await self.core.request_bridge_setup(settings)

    async def request_release_setup(self, settings: dict[str, Any]) -> dict[str, Any]:
        return await self.core.request_release_setup(settings)

    def releases(self) -> list[dict[str, Any]]:
        return self.core.releases()

    def release(self, burn_nonce: int) -> dict[str, Any] | None:
        return self.core.release(burn_nonce)

    async def request_deposit_address(
        self, to: str, nonce: str | None, payload: str | None
    ) -> tuple[dict[str, Any], bool]:
        return await self.core.request_deposit_address(to, nonce, payload)

    def health(self) -> tuple[bool, str | None]:
        return self.core.health()

    def validators(self) -> list[schema.Validator]:
        return self.core.validators()

    def keys(self) -> list[schema.Key]:
        return self.core.keys()

    def key(self, key_id: str) -> schema.Key | None:
        return self.core.key(key_id)

    def signature(self, signature_id: str) -> schema.Signature | None:
        return self.core.signature(signature_id)

    def blocks(self, start: int, limit: int) -> list[schema.Block]:
        return self.core.blocks(start, limit)

    def block(self, height: int) -> schema.Block | None:
        return self.core.block(height)

    def transaction(self, tx_hash: str) -> schema.Transaction | None:
        return self.core.transaction(tx_hash)

    async def request_keygen(
        self, threshold: int, parties: list[str] | None, purpose: str = ""
    ) -> dict[str, Any]:
        return await self.core.request_keygen(threshold, parties, purpose)

    async def request_refresh(
        self, key_id: str, parties: list[str] | None = None, threshold: int | None = None
    ) -> dict[str, Any]:
        return await self.core.request_refresh(key_id, parties, threshold)

    async def vote_join(self, request_hex: str) -> dict[str, Any]:
        return await self.core.vote_join(request_hex)

    def derive(self, key_id: str, path: str) -> dict[str, Any]:
        return self.core.derive(key_id, path)

    async def request_sign(
        self, key_id: str, message: bytes, hash_name: str, path: str | None
    ) -> dict[str, Any]:
        return await self.core.request_sign(key_id, message, hash_name, path)

    async def request_presign(self, key_id: str, count: int) -> dict[str, Any]:
        return await self.core.request_presign(key_id, count)

    # what the daemon adds (as `NodeFacadeAdapter` does)
    def sessions(self) -> list[schema.Session]:
        return self.core.sessions_view()

    def session(self, session_id: str) -> schema.Session | None:
        return next((s for s in self.sessions() if s.session_id == session_id), None)

    @property
    def addrs(self) -> list[str]:
        return [f"/ip4/127.0.0.1/tcp/4102/p2p/{self.core.peer_name}"]

    def join_request(self) -> dict[str, Any]:
        return self.core.join_request(self.addrs[0].rsplit("/p2p/", 1)[0])

    def status(self, api_refused: dict[str, int]) -> schema.Status:
        return self.core.status(
            network="core-test",
            peers_connected=len(self.book.ready()),
            addrs=self.addrs,
            warnings=["vault key stored in the data directory (insecure_local_key)"],
            admission=schema.Admission.model_validate(self.admission.status()),
            buffers={"store": self.store.snapshot(), "early": self.core.early.snapshot()},
            api_refused=api_refused,
        )

    def peers(self) -> list[schema.Peer]:
        validators = {peerid.from_public_key(v) for v in self.core.replica.config()}
        out = []
        for rec in self.book.records():
            d = rec.as_dict()
            d["validator"] = rec.peer_id in validators
            d["status"] = "connected" if rec.connected else "disconnected"
            d["address"] = d["addrs"][0] if d["addrs"] else None
            out.append(schema.Peer.model_validate(d))
        return out

    async def legacy_broadcast(self, body: bytes) -> dict[str, Any]:
        self.sent += 1
        return {"sent": True, "seq": self.sent}

    async def legacy_direct(self, peer_id: str, body: bytes) -> dict[str, Any]:
        return await self.legacy_broadcast(body)

    def legacy_messages(self, round_id: str, direct: bool) -> list[dict[str, Any]]:
        sender = self.core.replica.config()[0]
        return [
            {"from": peerid.to_text(peerid.from_public_key(sender)), "seq": 1,
             "body_hex": "6869", "time": 1764100000.25},
        ]  # fmt: skip


def _undeclared(value: Any, where: str = "") -> list[str]:
    """Fields the node sent that no model declares (the schema must describe them all)."""
    if isinstance(value, BaseModel):
        out = [f"{where}.{k}" for k in value.model_extra or {}]
        for name in type(value).model_fields:
            out += _undeclared(getattr(value, name), f"{where}.{name}")
        return out
    if isinstance(value, list):
        return [x for i, v in enumerate(value) for x in _undeclared(v, f"{where}[{i}]")]
    return []


def _route(path: str) -> str | None:
    """The route of the document that `path` is asked on."""
    for template in openapi_document()["paths"]:
        if re.fullmatch(re.sub(r"\{[a-z_]+\}", "[^/]+", template), path):
            return template
    return None


class Checked:
    """The test's client: each answer validated with its model, exactly."""

    def __init__(self, http: httpx.AsyncClient, node: InProcessNode) -> None:
        self.http, self.node = http, node
        self.seen: set[tuple[str, str | None]] = set()

    async def ask(
        self,
        method: str,
        path: str,
        model: Any,
        *,
        status: int = 200,
        body: Any = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        r = await self.http.request(method, path, json=body, params=params)
        assert r.status_code == status, (method, path, r.status_code, r.text)
        data = r.json()
        if isinstance(model, list):
            (model,) = model
            assert isinstance(data, list), (path, data)
            parsed: Any = [model.model_validate(d) for d in data]
        else:
            parsed = model.model_validate(data)
        assert _undeclared(parsed) == [], (path, _undeclared(parsed))
        self.seen.add((method.lower(), _route(path)))
        return data


@pytest.mark.trio
async def test_real_answers_fit_their_models(tmp_path: Path, keys: list[Any]) -> None:  # noqa: F811
    async with trio.open_nursery() as nursery:
        cores = await _start(nursery, tmp_path, keys)
        node = InProcessNode(cores[1], cores)
        app = build_app(node, TOKEN)  # type: ignore[arg-type]
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        auth = {"authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://n", headers=auth) as h:
            api = AsyncApiClient("http://n", TOKEN)
            api.http = h
            await _walk(Checked(h, node), node, cores, api)
        nursery.cancel_scope.cancel()


_sent = schema.sent  # what the API sends for a node's answer


def _status(answer: Any) -> str | None:
    """The `status` of a node's answer (a model, a dict, or None)."""
    return _sent(answer).get("status") if answer is not None else None


async def _bridge(c: Checked, node: InProcessNode, cores: list[Any]) -> None:
    """The bridge's routes: a key made for it, settings agreed by three validators, a
    deposit address, and a deposit three validators saw."""
    S = schema
    made = await c.ask(
        "POST", "/keygen", S.KeyAccepted, status=202, body={"threshold": 1, "purpose": "bridge"}
    )
    await _wait(lambda: all(_status(x.key(made["key_id"])) == "active" for x in cores))
    bridge_key = _sent(node.key(made["key_id"]))["key_id"]
    assert _sent(node.key(bridge_key))["purpose"] == "bridge"
    body = {"key_id": bridge_key, "message": "mint 100 BTC to me"}
    refused = await c.ask("POST", "/sign", S.Error, status=409, body=body)
    assert "signs only bridge messages" in refused["error"]
    assert (await c.ask("GET", "/bridge", S.BridgeInfo)) == {
        "set_up": False, "proposals": 0, "watch": {"bitcoin": None, "evm": None},
    }  # fmt: skip
    settings = {
        "key_id": bridge_key, "chain_name": "Ethereum", "chain_id": 31337,
        "gateway": "0x" + "5f" * 20, "network": "regtest", "confirmations": 1,
        "fee_sats": 1000, "min_deposit_sats": 10_000,
    }  # fmt: skip
    await c.ask("POST", "/bridge/setup", S.BridgeSetupAccepted, status=202, body=settings)
    for other in (cores[2], cores[3]):  # (the API's node is cores[1]: three votes)
        await other.request_bridge_setup(settings)
    await _wait(lambda: all(_sent(x.bridge_info())["set_up"] for x in cores))
    info = await c.ask("GET", "/bridge", S.BridgeInfo)
    assert info == _sent(node.bridge_info()) and info["chain_id"] == 31337
    assert set(info) == set(S.BridgeInfo.model_fields)
    to = "0x" + "70" * 20
    body = {"to": to, "payload": "0xbeef"}
    new = await c.ask("POST", "/bridge/deposit-address", S.DepositAddress, status=202, body=body)
    assert new["status"] == "pending" and new["address"].startswith("bcrt1q")
    await _wait(lambda: all(len(x.deposit_addresses()) == 1 for x in cores))
    body = {**body, "nonce": new["nonce"]}
    known = await c.ask("POST", "/bridge/deposit-address", S.DepositAddress, body=body)
    assert known == {**new, "status": "recorded", "height": known["height"]}
    listed = await c.ask("GET", "/bridge/addresses", [S.DepositAddress], params={"to": to})
    assert listed == [known] and all(_sent(x.deposit_addresses()) == [known] for x in cores)
    # a deposit three validators saw at depth: final, the same at every node
    g = bytes.fromhex(new["gHash"][2:])
    script = p2wpkh_script(cores[0].bridge.addresses[g].key_hash)
    seen = DepositObserved(b"\x5a" * 32, 0, 50_000, script, b"\xbb" * 32, 101, g)
    for x in cores[:3]:
        x.submit(seen)
    await _wait(lambda: all(x.bridge.deposits for x in cores))
    txid = (b"\x5a" * 32)[::-1].hex()
    dep = await c.ask("GET", f"/bridge/deposits/{txid}:0", S.Deposit)
    assert (
        dep == _sent(node.deposit(txid, 0)) and dep["amount"] == 49_000 and dep["signature"] is None
    )
    assert await c.ask("GET", "/bridge/deposits", [S.Deposit], params={"to": to}) == [dep]
    await c.ask("GET", f"/bridge/deposits/{txid}:1", S.Error, status=404)
    # what this node's own Bitcoin watch sees: one payment mined, one in the mempool
    chain = FakeChain()
    chain.mine(("dd" * 32, [(70_000, script[2:])]))
    chain.mempool["cc" * 32] = [(60_000, script[2:])]
    watch = BitcoinWatch(
        lambda: cores[1].bridge, lambda _: b"", cores[1].identity.public_bytes(), lambda: chain
    )
    cores[1].bitcoin_watch = watch
    await watch.look(chain)
    listed = await c.ask("GET", "/bridge/deposits", [S.Deposit])
    assert [(d["status"], d["confirmations"]) for d in listed] == [
        ("final", None), ("confirming", 1), ("seen", 0),
    ]  # fmt: skip
    assert listed[2] == await c.ask("GET", f"/bridge/deposits/{'cc' * 32}:0", S.Deposit)
    assert listed[2]["amount"] == 59_000 and listed[2]["block_hash"] is None
    info = await c.ask("GET", "/bridge", S.BridgeInfo)
    assert info["watch"]["bitcoin"] == {
        "tip": 1, "reorgs": 0, "mempool_payments": 1, "errors": 0, "last_error": None,
    }  # fmt: skip
    cores[1].bitcoin_watch = None
    # the release side: settings voted by three validators, a burn three of them saw
    release = {"evm_confirmations": 2, "bump_after": 6, "min_release_sats": 10_000,
               "max_fee_rate": 200}  # fmt: skip
    await c.ask("POST", "/bridge/release-setup", S.BridgeSetupAccepted, status=202, body=release)
    await c.ask("POST", "/bridge/release-setup", S.Error, status=422, body={"bump_after": 0})
    for other in (cores[2], cores[3]):
        await other.request_release_setup(release)
    await _wait(lambda: all(_sent(x.bridge_info())["release"] for x in cores))
    info = await c.ask("GET", "/bridge", S.BridgeInfo)
    assert info["release"]["holdings_sats"] == 50_000 and info["release"]["fee_rate"] is None
    assert info["release"]["main_address"].startswith("bcrt1q")
    burn = BurnObserved(5, b"bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", 20_000,
                        b"\x0e" * 32, b"\x0b" * 32, 9)  # fmt: skip
    for x in cores[:3]:
        x.submit(burn)
    await _wait(lambda: all(x.bridge.burns for x in cores))
    (listed,) = await c.ask("GET", "/bridge/releases", [S.Release])
    assert listed["status"] == "final" and listed["amount"] == 20_000 and listed["txid"] is None
    assert listed == await c.ask("GET", "/bridge/releases/5", S.Release)
    await c.ask("GET", "/bridge/releases/6", S.Error, status=404)
    await c.ask("GET", "/bridge/releases/x1", S.Error, status=400)
    await c.ask("GET", f"/bridge/deposits/{txid}:4294967296", S.Error, status=400)
    await c.ask("GET", "/bridge/deposits", S.Error, status=400, params={"to": "0x12"})


async def _typed(api: AsyncApiClient, node: InProcessNode) -> None:
    """The typed calls of `tssnode.api.client` on the same node."""
    assert (await api.health()).ok and (await api.status()).validators == 4
    key = (await api.keys())[0]
    assert key.status == "active" and (await api.key(key.key_id)) == key
    assert key.to_json() == _sent(node.key(key.key_id))
    assert (await api.derive(key.key_id, "m/7")).to_json() == _sent(node.derive(key.key_id, "m/7"))
    accepted = await api.sign(key.key_id, b"\x00\xff", "eip191")
    sig = await api.signature(accepted.signature_id)
    assert sig.digest == accepted.digest and sig.key_id == key.key_id
    blocks = await api.blocks(1, 5)
    assert [b.to_json() for b in blocks] == _sent(node.blocks(1, len(blocks)))
    assert (await api.block(blocks[0].height)).to_json() == _sent(node.block(blocks[0].height))
    typed_sessions = {s.session_id for s in await api.sessions()}
    assert typed_sessions and typed_sessions <= {s.session_id for s in node.sessions()}
    assert len(await api.validators()) == 4 and await api.peers()
    assert (await api.join_request()).is_validator
    with pytest.raises(ApiError) as refused:
        await api.vote_join((await api.join_request()).request)
    assert refused.value.status == 409
    with pytest.raises(ValidationError):  # refused before it is sent, as the node would
        await api.keygen(0)


async def _walk(c: Checked, node: InProcessNode, cores: list[Any], api: AsyncApiClient) -> None:
    S = schema
    assert (await c.ask("GET", "/health", S.Health))["ok"] is True
    await c.ask("GET", "/health/live", S.Health)
    await c.ask("GET", "/openapi.json", S.OpenApiDocument)
    status = await c.ask("GET", "/status", S.Status)
    assert status["api_refused"] == {} and status["liveness"] is None
    validators = await c.ask("GET", "/validators", [S.Validator])
    assert len(validators) == 4 and validators == _sent(node.validators())
    peers = await c.ask("GET", "/peers", [S.Peer])
    assert {p["status"] for p in peers} == {"connected", "disconnected"}
    assert peers == _sent(node.peers())

    # a key: pending (accepted here, then in a block), then active
    req = await c.ask("POST", "/keygen", S.KeyAccepted, status=202, body={"threshold": 2})
    key_id = req["key_id"]
    pending = await c.ask("GET", f"/keys/{key_id}", S.Key)
    assert pending["status"] == "pending" and pending["public_key"] is None
    # the fields a pending key has: accepted here only, or a request in a block (holders)
    asked = {"key_id", "status", "public_key", "threshold", "parties", "epoch", "tier"}
    asked |= {"addresses", "height", "error"}
    assert set(pending) in (asked, asked | {"holders"})
    await c.ask("GET", "/keys", [S.Key])
    await _wait(lambda: all(_status(x.key(key_id)) == "active" for x in cores))
    await _wait(lambda: len(_sent(node.key(key_id))["holders"]) == 4)  # (the last vote may be late)
    key = await c.ask("GET", f"/keys/{key_id}", S.Key)
    assert key == _sent(node.key(key_id)) and key["status"] == "active"
    assert set(key) == set(S.Key.model_fields) - {"previous"}  # every field, as the node has it
    listed = await c.ask("GET", "/keys", [S.Key])
    assert listed == _sent(node.keys())
    active = key["key_id"]
    derived = await c.ask("POST", f"/keys/{active}/derive", S.Derived, body={"path": "m/0/1"})
    assert derived == _sent(node.derive(active, "m/0/1"))

    # a signature: pending, then done
    sig_req = await c.ask(
        "POST", "/sign", S.SignAccepted, status=202, body={"key_id": active, "message": "hi"}
    )
    sig_id = sig_req["signature_id"]
    first = await c.ask("GET", f"/signatures/{sig_id}", S.Signature)
    assert first["status"] in ("pending", "done")
    await _wait(lambda: _status(node.signature(sig_id)) == "done")
    sig = await c.ask("GET", f"/signatures/{sig_id}", S.Signature)
    assert sig == _sent(node.signature(sig_id)) and sig["v"] in (27, 28)
    assert set(sig) == set(S.Signature.model_fields) - {"error"}  # (one in the ledger)
    await c.ask(
        "POST", "/sign", S.SignAccepted, status=202,
        body={"key_id": active, "message_hex": "00ff", "hash": "keccak256", "path": "m/1"},
    )  # fmt: skip

    # sessions, blocks, transactions
    sessions = await c.ask("GET", "/sessions", [S.Session])
    assert {"keygen", "aux"} <= {s["phase"] for s in sessions}  # (it may not be a signer)
    assert all(set(s) == set(S.Session.model_fields) for s in sessions)
    await c.ask("GET", f"/sessions/{sessions[0]['session_id']}", S.Session)
    blocks = await c.ask("GET", "/blocks", [S.Block], params={"from": 1, "limit": 500})
    assert blocks == _sent(node.blocks(1, len(blocks)))  # (more may have committed since)
    full = next(b for b in blocks if b["txs"])
    block = await c.ask("GET", f"/blocks/{full['height']}", S.Block)
    assert block == _sent(node.block(full["height"])) and block["txs"][0]["payload"]
    # every field; a transaction's payload only in the full block
    assert set(block) == set(full) == set(S.Block.model_fields)
    assert (
        set(block["txs"][0]) == set(S.Transaction.model_fields) == set(full["txs"][0]) | {"payload"}
    )
    tx = await c.ask("GET", f"/tx/{req['tx']}", S.Transaction)
    assert tx == _sent(node.transaction(req["tx"])) and tx["kind"] == "KeygenRequest"

    # the Python client's typed calls read the same answers into the same models
    await _typed(api, node)
    await _bridge(c, node, cores)

    # membership, pools, refresh, the original project's routes
    join = await c.ask("GET", "/join-request", S.JoinRequest)
    assert join["is_validator"] is True
    refused = await c.ask(
        "POST", "/validators/join", S.Error, status=409, body={"request": join["request"]}
    )
    assert refused["error"]
    await c.ask("POST", f"/keys/{active}/presign", S.KeyAccepted, status=202, body={"count": 1})
    await c.ask("POST", f"/keys/{active}/refresh", S.KeyAccepted, status=202)
    await c.ask("POST", "/start", S.KeyAccepted, status=202)
    await c.ask("POST", "/broadcast", S.LegacySent, status=202, body="hello")
    peer = peers[0]["peer_id"]
    await c.ask("POST", "/direct-message", S.LegacySent, status=202, body="x", params={"id": peer})
    for route in ("/get-message", "/get-direct-message"):
        await c.ask("GET", route, [S.LegacyMessage], params={"roundId": "1"})

    # errors
    for path, code in (("/keys/" + "ab" * 16, 404), ("/blocks/x", 400), ("/nowhere", 404)):
        await c.ask("GET", path, S.Error, status=code)
    r = await c.http.get("/status", headers={"authorization": "Bearer wrong"})
    assert r.status_code == 401 and S.Error.model_validate(r.json())

    # every route of the document was asked (but the event stream: its events below)
    doc = openapi_document()["paths"]
    described = {(method, path) for path, ops in doc.items() for method in ops}
    assert described - c.seen == {("get", "/events")}, described - c.seen

    # the events the nodes published: each fits its model and is sent unchanged (a node
    # that is not among the signers publishes no `signature.ready`: all four are read)
    published = [e.to_json() for x in cores for e in x.events.recent]
    kinds = {e["kind"] for e in published}
    assert {"block.committed", "session.started", "session.done", "proof.verified"} <= kinds
    assert "signature.ready" in kinds
    # every node announces the signature's settlement once, as it executes its block
    settled = [e for e in published if e["kind"] == "request.settled" and e["request"] == sig_id]
    assert len(settled) == len(cores), settled
    assert {(e["request_kind"], e["status"], e["key_id"]) for e in settled} == {
        ("sign", "done", active)
    }
    assert len({e["height"] for e in settled}) == 1
    # a reader may ask for some kinds only; a kind no model knows is refused
    refused = await c.ask("GET", "/events", S.Error, status=400, params={"kind": "sign.nope"})
    assert "sign.nope" in refused["error"]
    for event in published:
        parsed = schema.parse_event(event)
        assert _undeclared(parsed) == [], event
        assert json.loads(_event_data(event)) == event


# -- (c) tampering -----------------------------------------------------------------------------
KEY: dict[str, Any] = {
    "key_id": "ab" * 16,
    "status": "active",
    "public_key": "02" + "11" * 32,
    "threshold": 1,
    "parties": ["12D3KooWA", "12D3KooWB"],
    "holders": ["12D3KooWA", "12D3KooWB"],
    "epoch": 0,
    "tier": "insecure-test",
    "addresses": {"eth": "0x" + "00" * 20, "btc_p2wpkh": "bc1q"},
    "height": 4,
    "error": None,
    "presignatures": 2,
    "presignatures_pending": 0,
}


def test_a_response_without_a_required_field_is_refused() -> None:
    assert schema.Key.model_validate(KEY).to_json() == KEY  # as sent, not a field more
    for field in ("key_id", "status", "public_key", "tier", "addresses", "height"):
        tampered = {k: v for k, v in KEY.items() if k != field}
        with pytest.raises(ValidationError, match=field):
            schema.Key.model_validate(tampered)
    for field, wrong in (("threshold", "1"), ("status", "lost"), ("parties", "12D3KooWA")):
        with pytest.raises(ValidationError, match=field):
            schema.Key.model_validate({**KEY, field: wrong})
    with pytest.raises(ValidationError, match="btc_p2wpkh"):
        schema.Key.model_validate({**KEY, "addresses": {"eth": "0x"}})
    # optional fields may be left out (a keygen request not in a block yet has no holders),
    # and are then left out of the JSON again
    optional = ("holders", "presignatures", "presignatures_pending")
    short = {k: v for k, v in KEY.items() if k not in optional}
    assert schema.Key.model_validate(short).to_json() == short
    # extra fields are kept, for clients one version behind the node
    assert schema.Key.model_validate({**KEY, "new": 1}).to_json()["new"] == 1
    event = {"seq": 3, "kind": "block.committed", "time": 1.5, "height": 2, "hash": "ab", "txs": 0}
    with pytest.raises(ValidationError, match="latency_ms"):
        schema.parse_event(event)
    assert schema.parse_event({**event, "latency_ms": None}).to_json() == {
        **event,
        "latency_ms": None,
    }
    with pytest.raises(ValidationError):
        schema.parse_event({**event, "latency_ms": 5, "kind": "block.lost"})


@pytest.mark.trio
async def test_a_node_that_breaks_the_schema_gets_a_500() -> None:
    class Broken:
        events = None

        def key(self, key_id: str) -> dict[str, Any]:
            return {k: v for k, v in KEY.items() if k != "status"}

        def keys(self) -> list[dict[str, Any]]:
            return [KEY, {**KEY, "threshold": "one"}]

        def block(self, height: int) -> dict[str, Any]:
            return {"height": height}

    app = build_app(Broken(), TOKEN)  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    auth = {"authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://n", headers=auth) as h:
        for path in ("/keys/" + "ab" * 16, "/keys", "/blocks/3"):
            r = await h.get(path)
            assert r.status_code == 500, (path, r.text)
            assert r.json() == {"error": "internal error (logged by the node)"}


def test_the_console_reads_what_validates_and_leaves_the_rest() -> None:
    fields = schema.read_fields(schema.Key, {**KEY, "threshold": "one", "epoch": None, "x": 1})
    assert "threshold" not in fields and "x" not in fields and "epoch" not in fields
    assert schema.read_fields(schema.Block, {"commit_latency_ms": 41.0}) == {
        "commit_latency_ms": 41
    }
    assert fields["addresses"] == KEY["addresses"]  # (a model field: as it came)
    assert schema.read_fields(schema.Key, "not an object") == {}
    assert schema.read_fields(schema.LegacyMessage, {"from": "p", "seq": 1})["from_"] == "p"


def test_the_console_reads_events_the_same_way() -> None:
    kind, fields = schema.read_event(
        {"seq": 7, "time": 1.5, "kind": "session.round", "ssid": "ab", "round": "two", "of": 3.0}
    )
    assert kind == "session.round"
    assert fields == {"seq": 7, "time": 1.5, "kind": "session.round", "ssid": "ab", "of": 3}
    # a kind no model knows: the fields every event has; no kind: nothing
    assert schema.read_event({"kind": "ledger.later", "seq": 2, "height": 3}) == (
        "ledger.later",
        {"seq": 2, "kind": "ledger.later"},
    )
    assert schema.read_event({"seq": 2}) == ("", {})
    assert schema.read_event(["not", "an", "event"]) == ("", {})
    # every kind has its model, and each model its kinds
    models = schema.event_models()
    assert models["peer.down"] is schema.PeerEvent and models["proof.rejected"] is schema.ProofEvent
    assert len(models) == 15
