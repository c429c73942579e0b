"""Four node cores in one trio process: real ledger services (LevelDB, PBFT) over the
ledger's memory transport, real sessions, real vaults. The same flow as the multi-process
tests over libp2p, without processes, to pin the node's own logic down."""

from __future__ import annotations

import dataclasses
import hashlib
import time
from pathlib import Path
from typing import Any

import pytest
import trio
from coincurve import PublicKey
from ecdsa import SECP256k1, VerifyingKey

from tssnode.api.facade import RequestRejected
from tssnode.cli.daemon import APPS
from tssnode.crypto.identity import IdentityKey
from tssnode.ledger.genesis import Validator, make_genesis
from tssnode.ledger.replica import ReplicaOptions
from tssnode.ledger.service import ReplicaService
from tssnode.node.events import EventBus
from tssnode.node.executor import OPEN_SIGN_STALE
from tssnode.node.node import NodeCore
from tssnode.node.primes import PrimeReserve
from tssnode.node.recovery import vault_id
from tssnode.protocol.base import Message, SessionConfig
from tssnode.protocol.hashing import message_digest
from tssnode.store import LevelStore
from tssnode.store.errors import PresignatureUsed
from tssnode.store.sealing import Sealer
from tssnode.store.vault import Vault
from tssnode.testing.memnet import MemoryNetwork

from ..conftest import TEST

pytestmark = pytest.mark.trio

OPTIONS = ReplicaOptions(view_timeout=5.0, tick=0.2)


class CoreTransport:
    """Protocol envelopes between cores of this process, addressed by validator key."""

    def __init__(self, cores: dict[bytes, NodeCore], cfg: SessionConfig) -> None:
        self.cores, self.cfg = cores, cfg

    async def send(self, party: int, msg: Message) -> None:
        data = msg.to_bytes()
        self.cores[self.cfg.identities[party]].route(self.cfg.ssid, data)
        await trio.lowlevel.checkpoint()

    async def broadcast(self, msg: Message) -> None:
        for p in self.cfg.others:
            await self.send(p, msg)


@pytest.fixture
def keys() -> list[IdentityKey]:
    ks = [IdentityKey.from_seed(hashlib.sha256(b"core-test:%d" % i).digest()) for i in range(4)]
    return sorted(ks, key=lambda k: k.public_bytes())


async def _start(
    nursery: trio.Nursery,
    tmp: Path,
    keys: list[IdentityKey],
    presign_pool: int = 0,
    tx_lifetime: int = 256,
    net: MemoryNetwork | None = None,
) -> list[NodeCore]:
    """Four cores on an in-memory network, their ledgers running the daemon's applications."""
    genesis = make_genesis(
        [Validator(k.public_bytes(), f"n{i}", "") for i, k in enumerate(keys)],
        chain_name="core-test",
        checkpoint_interval=4,
        window=8,
        tx_lifetime=tx_lifetime,
    )
    net = net or MemoryNetwork(seed="core")
    cores: dict[bytes, NodeCore] = {}
    out = []
    for i, k in enumerate(keys):
        store = LevelStore(tmp / f"n{i}")
        vault = Vault(store, Sealer.open(store, b"pass-%d" % i, log2_n=10))
        svc = ReplicaService(k, genesis, store, net.connect(k.public_bytes()), OPTIONS, apps=APPS)
        primes = PrimeReserve((TEST.prime_bits,), target=2)
        core = NodeCore(
            identity=k,
            service=svc,
            vault=vault,
            events=EventBus(),
            primes=primes,
            peer_name=f"n{i}",
            transport_for=lambda cfg: CoreTransport(cores, cfg),
            default_tier="insecure-test",
            presign_pool=presign_pool,
        )
        cores[k.public_bytes()] = core
        await nursery.start(svc.run)
        svc.replica.on_block.append(core.on_block)
        await nursery.start(primes.run)
        await nursery.start(core.run)
        out.append(core)
    return out


async def _wait(predicate, seconds: float = 120.0) -> None:
    """Poll state that four independent nodes change (no single event covers it)."""
    with trio.fail_after(seconds):
        while not predicate():  # noqa: ASYNC110
            await trio.sleep(0.05)


async def _pooled_key(cores: list[NodeCore], pool: int) -> str:
    """A 1-of-4 key asked at node 0, active everywhere, its pool of `pool` ready at every
    node (the primary fills it; every signer reports each presignature ready)."""
    req = await cores[0].request_keygen(1, None)
    await _wait(lambda: all(getattr(c.key(req.key_id), "status", None) == "active" for c in cores))
    key_id: str = cores[0].keys()[0].key_id
    await _wait(lambda: all(c.key(key_id).presignatures == pool for c in cores))
    return key_id


async def test_keygen_requested_at_one_node_sign_at_another(tmp_path, keys):
    async with trio.open_nursery() as nursery:
        cores = await _start(nursery, tmp_path, keys)
        req = await cores[1].request_keygen(2, None)
        assert cores[1].key(req.key_id).status == "pending"
        await _wait(
            lambda: all(getattr(c.key(req.key_id), "status", None) == "active" for c in cores)
        )
        key = cores[0].key(req.key_id).to_json()
        assert key["threshold"] == 2 and len(key["parties"]) == 4
        assert key["addresses"]["eth"].startswith("0x")
        assert len({c.key(req.key_id).public_key for c in cores}) == 1
        key_id = cores[2].keys()[0].key_id

        # signing before the key is active is refused; unknown key ids too
        with pytest.raises(RequestRejected) as info:
            await cores[0].request_sign("ab" * 16, b"x", "sha256", None)
        assert info.value.status == 404

        sig_req = await cores[3].request_sign(key_id, b"hello", "sha256", None)
        sid = sig_req.signature_id
        await _wait(lambda: getattr(cores[0].signature(sid), "status", None) == "done")
        sig = cores[0].signature(sid).to_json()
        digest = message_digest(b"hello", "sha256")
        assert sig["digest"] == digest.hex() and len(sig["signers"]) == 3
        pub = bytes.fromhex(key["public_key"])
        vk = VerifyingKey.from_string(pub, curve=SECP256k1)
        assert vk.verify_digest(bytes.fromhex(sig["r"] + sig["s"]), digest)
        assert PublicKey(pub).format() == pub
        # every node holds the same chain
        heights = {c.replica.height for c in cores}
        await _wait(
            lambda: len({c.replica.chain.record(min(heights)).block.hash for c in cores}) == 1
        )
        kinds = {e.kind for e in cores[0].events.recent}
        assert {"block.committed", "session.started", "session.done", "proof.verified"} <= kinds
        nursery.cancel_scope.cancel()


async def test_a_warm_pool_signs_with_a_presignature_used_once(tmp_path, keys):
    async with trio.open_nursery() as nursery:
        cores = await _start(nursery, tmp_path, keys, presign_pool=2)
        key_id = await _pooled_key(cores, 2)
        st = cores[0].registry
        pooled = sorted(st.presigs)
        first = st.presigs[pooled[0]]
        # each node says how many it signs and holds (what the fault runner compares)
        views = [c.key(key_id).to_json() for c in cores]
        assert sum(v["presignatures_mine"] for v in views) == 2 * (1 + 1)  # t + 1 each
        assert all(v["presignatures_held"] == v["presignatures_mine"] for v in views)

        open_at_block: list[int] = []  # sign requests node 1 saw waiting, at each block
        cores[0].events.listeners.append(
            lambda e: (
                open_at_block.append(len(cores[0].executor.open_signs))
                if e.kind == "block.committed"
                else None
            )
        )
        sig_req = await cores[2].request_sign(key_id, b"pay 1 BTC to bob", "keccak256", None)
        sid = sig_req.signature_id
        await _wait(lambda: getattr(cores[1].signature(sid), "status", None) == "done")
        await _wait(lambda: not cores[0].executor.open_signs)
        assert 1 in open_at_block  # ordered, then settled: it waited in between
        sig = cores[1].signature(sid).to_json()
        request = st.requests[bytes.fromhex(sid)]
        assert request.presig == pooled[0]  # the oldest ready one, taken by this request
        assert request.signers == first.signers
        digest = message_digest(b"pay 1 BTC to bob", "keccak256")
        pub = bytes.fromhex(cores[0].key(key_id).public_key)
        vk = VerifyingKey.from_string(pub, curve=SECP256k1)
        assert vk.verify_digest(bytes.fromhex(sig["r"] + sig["s"]), digest)
        # each signer's copy is gone, its use and signature share recorded
        vid = vault_id(pooled[0])
        signers = [cores[j - 1] for j in first.signers]  # party j = j-th sorted validator
        assert {c.identity.public_bytes() for c in signers} == {
            st.keys[key_id].parties[j - 1] for j in first.signers
        }
        for c in signers:
            assert c.vault.used_by(vid) == bytes.fromhex(sid)
            assert vid not in set(c.vault.presignature_ids(key_id))
            with pytest.raises(PresignatureUsed):
                c.vault.take_presignature(key_id, vid, b"another request")
        # and the pool is topped up again
        await _wait(lambda: all(c.key(key_id).presignatures == 2 for c in cores))
        assert pooled[0] not in cores[3].registry.presigs

        # a refresh: new shares everywhere, the old ones deleted, the old pool dropped
        # (its presignatures belong to the old shares) and a new one made
        await cores[1].request_refresh(key_id)
        await _wait(lambda: all(c.key(key_id).epoch == 1 for c in cores))
        await _wait(lambda: all(c.vault.share_epochs(key_id) == [1] for c in cores))
        assert all(r.epoch == 1 for r in cores[0].registry.presigs.values())

        def only_live(c: NodeCore) -> bool:  # the old epoch's (k_i, χ_i) are gone too
            live = {vault_id(pid) for pid in c.registry.presigs}
            return set(c.vault.presignature_ids(key_id)) <= live

        await _wait(lambda: all(only_live(c) for c in cores))
        await _wait(lambda: all(c.key(key_id).presignatures == 2 for c in cores))
        again = await cores[0].request_sign(key_id, b"after the refresh", "sha256", None)
        await _wait(
            lambda: getattr(cores[0].signature(again.signature_id), "status", None) == "done"
        )
        done = cores[0].signature(again.signature_id).to_json()
        assert vk.verify_digest(
            bytes.fromhex(done["r"] + done["s"]), message_digest(b"after the refresh", "sha256")
        )
        nursery.cancel_scope.cancel()


async def test_a_pool_refill_waits_while_sign_requests_of_its_key_wait(tmp_path, keys):
    """A burst of sign requests first; the refill's presign sessions after (a stuck
    request holds the refill back for `OPEN_SIGN_STALE` seconds at most)."""
    async with trio.open_nursery() as nursery:
        cores = await _start(nursery, tmp_path, keys, presign_pool=1)
        key_id = await _pooled_key(cores, 1)
        primary = next(c for c in cores if c.replica.is_primary)
        primary.presign_pool = 2  # one missing
        waiting = hashlib.sha256(b"a sign request in the ledger").digest()
        primary.executor.open_signs[waiting] = (key_id, time.monotonic())
        primary._refill_pools()
        assert key_id not in primary._refilling  # held back
        primary.executor.open_signs[waiting] = ("another key", time.monotonic())
        primary._refill_pools()
        assert key_id in primary._refilling  # another key's requests do not hold it
        await _wait(lambda: all(c.key(key_id).presignatures == 2 for c in cores))
        primary.executor.open_signs[waiting] = (key_id, time.monotonic() - OPEN_SIGN_STALE - 1)
        assert not primary.executor.signing_waits(key_id)  # stale: forgotten
        assert not primary.executor.open_signs
        nursery.cancel_scope.cancel()


async def test_pruning_keeps_a_share_whose_refresh_is_not_accepted_yet(tmp_path, keys):
    """Shares are deleted once the ledger moved past them, never before: a node reshared
    into a key stores its new share before the ledger has the result."""
    from types import SimpleNamespace

    from tssnode.node.executor import Executor

    store = LevelStore(tmp_path / "v")
    vault = Vault(store, Sealer.open(store, b"pw", log2_n=10))
    me, other = keys[0], keys[1].public_bytes()
    executor = Executor(
        identity=me, vault=vault, events=EventBus(), submit=lambda p: b"",
        open_session=None, primes=None,  # type: ignore[arg-type]
    )  # fmt: skip
    key_id = "ab" * 16
    for epoch in (0, 1):
        vault.put_share(key_id, epoch, b"share %d" % epoch)

    def ledger(epoch: int, parties: tuple[bytes, ...]) -> Any:
        rec = SimpleNamespace(key=SimpleNamespace(epoch=epoch), parties=parties)
        return SimpleNamespace(keys={key_id: rec})

    executor.prune_shares(ledger(0, (other,)))  # the reshare's result is not in yet
    assert vault.share_epochs(key_id) == [1]
    executor.prune_shares(ledger(1, (other, me.public_bytes())))
    assert vault.share_epochs(key_id) == [1]
    executor.prune_shares(ledger(2, (other, me.public_bytes())))
    assert vault.share_epochs(key_id) == []
    store.close()


async def test_a_request_refused_as_it_is_handed_to_the_replica_leaves_no_journal(tmp_path, keys):
    """The pending pool full: the client hears 409, and the journal keeps nothing a restart
    would submit again (it used to keep the refused request and order it later)."""
    async with trio.open_nursery() as nursery:
        cores = await _start(nursery, tmp_path, keys)
        core = cores[0]
        core.replica.opt = dataclasses.replace(core.replica.opt, max_pending=0)
        with pytest.raises(RequestRejected) as info:
            await core.request_keygen(2, None)
        assert info.value.status == 409 and "pending pool is full" in str(info.value)
        assert list(core.accepted.unordered()) == [] and not core._unordered
        assert not core.submitted
        nursery.cancel_scope.cancel()


async def test_a_request_that_expired_unordered_answers_failed_also_after_a_restart(tmp_path, keys):
    """Node 0 accepts a keygen while cut off from everyone; the others commit past its
    expiry. Back on the network, node 0 says `failed` with the reason; and after a
    restart, which reads the journal again, still `failed`: it used to be unknown (404),
    because the journal dropped the transaction that says what was asked."""
    net = MemoryNetwork(seed="expiry")
    async with trio.open_nursery() as nursery:
        cores = await _start(nursery, tmp_path, keys, tx_lifetime=8, net=net)
        lone = cores[0]
        net.blocked.add(keys[0].public_bytes())
        req = await lone.request_keygen(1, None)
        key_id = req.key_id
        assert lone.key(key_id).status == "pending"
        expiry = lone.replica.height + 1 + 8 // 2
        three = [k.public_bytes().hex() for k in keys[1:]]
        while cores[1].replica.height <= expiry:
            other = await cores[1].request_keygen(1, three)
            await _wait(lambda o=other: getattr(cores[1].key(o.key_id), "status", None) == "active")
        net.blocked.clear()
        await _wait(lambda: lone.key(key_id).status == "failed")
        assert "before it was ordered" in lone.key(key_id).error
        assert all(c.key(key_id) is None for c in cores[1:])  # never ordered anywhere
        # a restart: the in-memory record of what was asked is gone, the journal is read
        lone.submitted.clear()
        assert lone.key(key_id) is None
        lone._resume_accepted()
        view = lone.key(key_id)
        assert view is not None and view.status == "failed"
        assert view.error is not None and "before it was ordered" in view.error
        nursery.cancel_scope.cancel()


async def test_a_node_that_lost_a_pooled_presignature_says_so(tmp_path, keys):
    async with trio.open_nursery() as nursery:
        cores = await _start(nursery, tmp_path, keys, presign_pool=1)
        key_id = await _pooled_key(cores, 1)
        (pid,) = cores[0].registry.presigs
        j = cores[0].registry.presigs[pid].signers[0]
        signer = cores[j - 1]  # party j = the j-th validator in key order
        assert signer.key(key_id).presignatures_held == 1
        signer.vault.delete_presignature(key_id, vault_id(pid))  # as a lost write would
        view = signer.key(key_id).to_json()
        assert (view["presignatures_mine"], view["presignatures_held"]) == (1, 0)
        nursery.cancel_scope.cancel()
