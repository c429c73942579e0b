"""The replica as a trio service over a transport: real LevelDB stores, trio timers driven
by the autojump clock (no real sleeping), and a Sequencer to order a crash between two
requests."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from tests.ledger.conftest import Tx
from tssnode.crypto.identity import IdentityKey
from tssnode.ledger.bootstrap import learn_genesis
from tssnode.ledger.errors import InvalidTransaction, StateTransferFailed
from tssnode.ledger.genesis import Genesis
from tssnode.ledger.replica import ReplicaOptions
from tssnode.ledger.service import ReplicaService
from tssnode.registry.app import KeyRegistry
from tssnode.registry.transactions import KeygenRequest
from tssnode.store import LevelStore
from tssnode.testing.memnet import MemoryNetwork

OPTIONS = ReplicaOptions(view_timeout=2.0, tick=0.5)


class Cluster:
    def __init__(self, tmp: Path, keys: list[IdentityKey], genesis: Genesis) -> None:
        self.net = MemoryNetwork(seed="service")
        self.keys = keys
        self.stores = [LevelStore(tmp / f"node{i}") for i in range(len(keys))]
        self.services = [
            ReplicaService(
                k, genesis, s, self.net.connect(k.public_bytes()), OPTIONS, apps=(KeyRegistry,)
            )
            for k, s in zip(keys, self.stores, strict=True)
        ]
        self.scopes: list[trio.CancelScope] = []

    async def start(self, nursery: trio.Nursery) -> None:
        for svc in self.services:
            scope = trio.CancelScope()
            self.scopes.append(scope)

            async def run(
                svc: ReplicaService = svc,
                scope: trio.CancelScope = scope,
                *,
                task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED,
            ) -> None:
                with scope:
                    await svc.run(task_status=task_status)

            await nursery.start(run)

    def stop(self, i: int) -> None:
        self.scopes[i].cancel()
        self.net.blocked.add(self.keys[i].public_bytes())

    def close(self) -> None:
        for s in self.stores:
            s.close()


def keygen(keys: list[IdentityKey]) -> KeygenRequest:
    return KeygenRequest(1, tuple(k.public_bytes() for k in keys), "insecure-test")


@pytest.mark.trio
async def test_four_services_commit_and_survive_a_primary_crash(
    tmp_path: Path, keys: list[IdentityKey], genesis: Genesis, tx: Tx, autojump_clock: object
) -> None:
    cluster = Cluster(tmp_path, keys, genesis)
    seq = trio.testing.Sequencer()
    try:
        async with trio.open_nursery() as nursery:
            await cluster.start(nursery)
            svc = cluster.services
            primary = 0  # keys are sorted: keys[0] is the primary of view 0

            async def client() -> None:
                async with seq(0):
                    t1 = tx(keys[2], keygen(keys), expiry=50)
                    svc[2].submit(t1)
                    for s in svc:
                        assert await s.wait_for_tx(t1.hash) == (1, 0)
                async with seq(2):
                    t2 = tx(keys[3], keygen(keys), expiry=50)
                    svc[3].submit(t2)
                    for i in (1, 2, 3):
                        await svc[i].wait_for_tx(t2.hash)
                    assert all(svc[i].replica.view >= 1 for i in (1, 2, 3))
                    with pytest.raises(InvalidTransaction, match="already in the ledger"):
                        svc[1].submit(t2)
                nursery.cancel_scope.cancel()

            async def crash_primary() -> None:
                async with seq(1):
                    cluster.stop(primary)

            nursery.start_soon(client)
            nursery.start_soon(crash_primary)
        heights = {s.replica.height for s in cluster.services[1:]}
        assert heights == {2}
        hashes = {s.replica.chain.tip for s in cluster.services[1:]}
        assert len(hashes) == 1
    finally:
        cluster.close()


@pytest.mark.trio
async def test_restarted_service_resumes_from_its_store(
    tmp_path: Path, keys: list[IdentityKey], genesis: Genesis, tx: Tx, autojump_clock: object
) -> None:
    cluster = Cluster(tmp_path, keys, genesis)
    try:
        async with trio.open_nursery() as nursery:
            await cluster.start(nursery)
            t = tx(keys[1], keygen(keys), expiry=50)
            cluster.services[1].submit(t)
            await cluster.services[3].wait_for_tx(t.hash)
            nursery.cancel_scope.cancel()
        tip = cluster.services[3].replica.chain.tip
        cluster.stores[3].close()
        store = LevelStore(tmp_path / "node3")
        again = ReplicaService(
            keys[3], genesis, store, MemoryNetwork().connect(b"x" * 32), apps=(KeyRegistry,)
        )
        async with trio.open_nursery() as nursery:
            await nursery.start(again.run)
            assert again.replica.chain.tip == tip
            nursery.cancel_scope.cancel()
        store.close()
    finally:
        cluster.close()


@pytest.mark.trio
async def test_learn_genesis_from_bootstrap_peers(
    tmp_path: Path, keys: list[IdentityKey], genesis: Genesis, autojump_clock: object
) -> None:
    cluster = Cluster(tmp_path, keys, genesis)
    try:
        async with trio.open_nursery() as nursery:
            await cluster.start(nursery)
            newcomer = cluster.net.connect(b"n" * 32)
            peers = [k.public_bytes() for k in keys]
            got = await learn_genesis(newcomer, peers, chain_id=genesis.chain_id)
            assert got == genesis
            tofu = await learn_genesis(cluster.net.connect(b"m" * 32), peers)
            assert tofu == genesis
            with pytest.raises(StateTransferFailed):
                await learn_genesis(
                    cluster.net.connect(b"o" * 32), peers, chain_id=b"\x00" * 32, attempts=3
                )
            nursery.cancel_scope.cancel()
    finally:
        cluster.close()
