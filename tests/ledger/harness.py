"""Scenario helpers for the simulated-network tests: seeded chaos and the safety audits."""

from __future__ import annotations

import random

from tssnode.crypto.encoding import decode_any
from tssnode.ledger.envelope import Signed
from tssnode.ledger.evidence import slot_of
from tssnode.ledger.messages import ProposeFrame, VoteFrame
from tssnode.ledger.replica import Replica
from tssnode.ledger.state import max_faulty
from tssnode.registry.app import KeyRegistry
from tssnode.registry.transactions import KeygenRequest
from tssnode.testing.pbftsim import Faults, SimNetwork


def keygen_tx(tag: bytes):
    """A submit function: a keygen request among all validators (a valid, cheap tx)."""

    def submit(r: Replica) -> None:
        parties = tuple(sorted(r.chain.state.validators))
        r.submit_payload(KeygenRequest(1, parties, "insecure-test"), nonce=tag)

    return submit


def chains(replicas: list[Replica]) -> dict[bytes, list[bytes]]:
    out = {}
    for r in replicas:
        out[r.me] = [rec.block.hash for rec in r.chain.records(1, r.height)]
    return out


def assert_consistent(replicas: list[Replica]) -> int:
    """Every pair of chains agrees on every height both have, and has no gaps."""
    hashes = chains(replicas)
    for r in replicas:
        assert len(hashes[r.me]) == r.height, "gap in the stored chain"
    longest = max(hashes.values(), key=len)
    for h in hashes.values():
        assert h == longest[: len(h)], "two replicas committed different blocks"
    return len(longest)


def signed_messages(frames: list[bytes]) -> list[Signed]:
    out = []
    for raw in frames:
        f = decode_any(raw)
        if isinstance(f, VoteFrame):
            out.append(f.message)
        elif isinstance(f, ProposeFrame):
            out.append(f.pre_prepare)
    return out


def assert_no_equivocation(frames: list[bytes]) -> None:
    """No two messages one replica sent (across all its incarnations) conflict."""
    seen: dict[tuple, bytes] = {}
    for m in signed_messages(frames):
        slot = slot_of(decode_any(m.body))
        if slot is None:
            continue
        key = (m.signer, *slot[:3])
        assert seen.setdefault(key, slot[3]) == slot[3], f"equivocation at {slot[:3]}"


def chaos_run(seed: int, n: int) -> tuple[SimNetwork, int]:
    """Drops, duplicates, reordering, a partition that heals and a crash/restart of at most
    f replicas, then a quiet phase where every replica submits one more request. Returns the
    network and the height everyone must reach."""
    rng = random.Random(f"chaos:{seed}:{n}")
    faults = Faults(
        drop=rng.choice([0.0, 0.02, 0.1, 0.2]),
        duplicate=rng.choice([0.0, 0.05, 0.2]),
        max_delay=rng.choice([0.005, 0.05, 0.3]),
    )
    net = SimNetwork.make(seed, n, faults=faults, apps=(KeyRegistry,))
    ids = net.ids
    f = max_faulty(n)
    chaos_end = 6.0
    for i in range(rng.randint(3, 8)):
        who = rng.choice(ids)
        net.at(
            rng.uniform(0, chaos_end - 1), lambda w=who, i=i: net.submit(w, keygen_tx(b"a%d" % i))
        )
    mode = rng.choice(["none", "minority", "split", "isolate-primary"])
    t0 = rng.uniform(0.2, 3.0)
    t1 = t0 + rng.uniform(0.5, 2.5)
    if mode == "minority":
        out = set(rng.sample(ids, f))
        net.at(t0, lambda: net.partition(out, set(ids) - out))
    elif mode == "split":
        half = set(rng.sample(ids, n // 2))
        net.at(t0, lambda: net.partition(half, set(ids) - half))
    elif mode == "isolate-primary":
        net.at(t0, lambda: net.partition({ids_sorted(net)[0]}, set(ids) - {ids_sorted(net)[0]}))
    if mode != "none":
        net.at(t1, net.heal)
    if rng.random() < 0.5:
        victims = rng.sample(ids, rng.randint(1, f))
        tc = rng.uniform(0.1, chaos_end - 1)
        for v in victims:
            net.at(tc, lambda v=v: net.crash(v))
            net.at(tc + rng.uniform(0.1, 2.0), lambda v=v: net.restart(v))
    net.run(chaos_end)
    net.heal()
    net.faults = Faults()
    for v in ids:
        if not net.nodes[v].alive:
            net.restart(v)
    for i, v in enumerate(ids):
        net.submit(v, keygen_tx(b"z%d" % i))
    before = {r.me: r.height for r in net.alive_replicas()}

    def done() -> bool:
        rs = net.alive_replicas()
        hs = {r.height for r in rs}
        return len(hs) == 1 and all(not r.pending for r in rs)

    net.run(chaos_end + 120, stop=done)
    return net, max(before.values())


def ids_sorted(net: SimNetwork) -> list[bytes]:
    return sorted(net.ids)
