"""Every wire decoder, fed random bytes and mutated valid encodings, raises only the
project's typed errors (`TssError`), never anything else (issue 13).

What is decoded here is what a peer can put on the wire:

* every `Wire` type of the project (the encoding registry: protocol bodies, zk proofs,
  ledger frames and transactions, net envelopes), by its own decoder and by `decode_any`;
* protocol envelopes and bodies as a session receives them, and whole protocol phases
  (keygen, sign; aux-info and presign in the slow tier) with one message tampered with
  and re-signed by its sender: each ends in a result or a blame, never an exception;
* ledger frames as a replica receives them (`Replica.receive` must never raise: an
  exception there would stop the node's replica service);
* net envelopes (`decode_envelope`, `decode_one_of`, `Envelope.check`) and the frames on
  a stream (`read_frame`, with the bytes-in-flight budget);
* peer ids in text form.

Valid encodings come from real runs: a keygen, aux-info, presign and sign at the test
tier, and a simulated 4-replica ledger with a view change and a node joining. A mutation
either edits the bytes (flip, insert, delete, truncate, splice) or, more often, the
decoded CBOR value (replace or drop one element anywhere, duplicate one, swap the type of
a leaf), re-encoded canonically so it gets past the CBOR layer to the typed decoders.

A few hundred examples per test run by default; `-m slow` runs thousands.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import random
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tssnode.crypto import params
from tssnode.crypto.encoding import REGISTRY, Wire, decode_any, dumps, loads_plain
from tssnode.crypto.identity import IdentityKey
from tssnode.errors import TssError
from tssnode.ledger.genesis import Validator
from tssnode.ledger.messages import FRAME_TYPES
from tssnode.ledger.replica import Replica
from tssnode.net import direct, peerid
from tssnode.net.identity import NodeIdentity
from tssnode.net.limits import StreamGuard
from tssnode.net.wire import (
    Ack,
    Envelope,
    FetchEnd,
    FetchRequest,
    PexHello,
    PexPeer,
    SignedEnvelope,
    decode,
    decode_one_of,
    frame,
    read_frame,
)
from tssnode.protocol.base import Message
from tssnode.registry.app import KeyRegistry
from tssnode.registry.transactions import KeygenRequest, join_payload
from tssnode.testing.localgroup import LocalGroup, pool_primes
from tssnode.testing.pbftsim import SimNetwork
from tssnode.testing.protocol_faults import Fault
from tssnode.testing.protocol_runner import RunResult

FAST = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
SLOW = settings(FAST, max_examples=3000)
TIER = params.INSECURE_TEST


# -- valid encodings from real runs ----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Recorder(Fault):
    """A fault rule that changes nothing and keeps a copy of every message."""

    seen: list[Message] = dataclasses.field(default_factory=list, compare=False)

    def matches(self, msg: Message, to: int) -> bool:
        self.seen.append(msg)
        return False

    def apply(self, msg: Message, to: int, key: IdentityKey) -> Message | None:
        return msg


@cache
def protocol_run() -> tuple[LocalGroup, Any, Any, list[Message]]:
    """Keygen, aux-info, presign and sign for 3 parties (t = 1); every message sent."""
    rec = _Recorder(0, 0)
    group = LocalGroup((1, 2, 3), 1, TIER, seed=13)
    shares = group.keygen([rec]).only_result()
    shares = group.aux(shares, pool_primes(TIER, random.Random(13)), faults=[rec]).only_result()
    presigs = group.presign(shares, (1, 2), faults=[rec]).only_result()
    group.sign(shares, presigs, hashlib.sha256(b"fuzz").digest(), faults=[rec]).only_result()
    return group, shares, presigs, rec.seen


@cache
def ledger_run() -> tuple[SimNetwork, list[bytes]]:
    """Four replicas ordering a few requests, a crashed primary (a view change), and a
    fifth node that learns the genesis and catches up: every frame any of them sent."""
    net = SimNetwork.make("fuzz", 4, apps=(KeyRegistry,))
    ids = sorted(net.ids)

    def keygen(tag: bytes) -> Callable[[Replica], object]:
        def submit(r: Replica) -> object:
            parties = tuple(sorted(r.chain.state.validators))
            return r.submit_payload(KeygenRequest(1, parties, TIER.name), nonce=tag)

        return submit

    for i in range(6):
        net.submit(ids[i % 4], keygen(b"k%d" % i))
    net.run(3.0)
    net.crash(net.replica(ids[0]).primary())
    net.submit(ids[1], keygen(b"after"))
    net.run(15.0)
    joiner = IdentityKey.from_seed(b"fuzz-joiner".ljust(32, b"."))
    net.join(joiner, [ids[1], ids[2]])
    net.run(20.0)
    join = join_payload(joiner, net.genesis.chain_id, "joiner", "")
    net.submit(ids[1], lambda r: r.submit_payload(join))
    net.run(25.0)
    frames = {f for node in net.nodes.values() for f in node.sent}
    return net, sorted(frames)


@cache
def ledger_values() -> list[Wire]:
    """One valid transaction of every kind (as a relayed request frame), with the results,
    signatures, blames and evidence of the protocol run inside them."""
    from tssnode.ledger.envelope import sign as sign_vote
    from tssnode.ledger.evidence import EquivocationEvidence
    from tssnode.ledger.messages import Commit, RequestFrame
    from tssnode.ledger.transactions import Misbehaviour, make_tx
    from tssnode.registry.transactions import (
        BlameReport,
        KeygenResult,
        PresignReady,
        PresignRequest,
        RefreshRequest,
        RefreshResult,
        SignRequest,
        SignResult,
        ValidatorLeave,
        Withdrawal,
    )

    group, shares, presigs, _ = protocol_run()
    key = shares[1].key
    digest = hashlib.sha256(b"fuzz").digest()
    signature = group.sign(shares, presigs, digest).only_result()[1]
    # a blame with evidence: party 2's keygen commitment opened to something else
    broken = _Tamper(0, 0, nth=8, change=mutated_by(5))
    aborts = LocalGroup((1, 2, 3), 1, TIER, seed=13).keygen([broken]).aborts
    net, _ = ledger_run()
    signer = IdentityKey.from_seed(hashlib.sha256(b"sim-key:fuzz:0").digest())
    chain = net.genesis.chain_id
    a = sign_vote(signer, chain, Commit(0, 3, b"\x01" * 32))
    b = sign_vote(signer, chain, Commit(0, 3, b"\x02" * 32))
    first, second = sorted((a, b), key=lambda m: m.body)
    request = hashlib.sha256(b"a request").digest()
    payloads: list[Wire] = [
        ValidatorLeave(signer.public_bytes()),
        KeygenResult(request, key),
        RefreshRequest("key-id", (signer.public_bytes(),), 1),
        RefreshResult(request, key),
        PresignRequest("key-id", 3),
        PresignReady(request, 0, key.public_key.to_bytes()),
        SignRequest("key-id", digest, (0, 1), (), b"message", "sha256"),
        SignResult(request, signature.signature),
        Withdrawal(request, "restarted"),
        Misbehaviour(EquivocationEvidence(signer.public_bytes(), first, second)),
        *(BlameReport(request, abort.blame) for abort in aborts.values()),
    ]
    txs = [make_tx(signer, chain, p, expiry=99, nonce=b"n") for p in payloads]
    return [*txs, *(RequestFrame(tx.to_bytes()) for tx in txs), shares[1], presigs[1]]


@cache
def net_values() -> list[Wire]:
    a, b = NodeIdentity.generate(), NodeIdentity.generate()
    env = Envelope("tssnode-test", b"session", 3, a.peer_id, b.peer_id, 7, b"payload")
    signed = SignedEnvelope(env, a.sign(SignedEnvelope.signing_bytes(env)))
    bcast = dataclasses.replace(env, recipient=b"", seq=8)
    return [
        env,
        signed,
        SignedEnvelope(bcast, a.sign(SignedEnvelope.signing_bytes(bcast))),
        Ack(7, "ok"),
        FetchRequest("tssnode-test", b"session", 3, (a.peer_id, b.peer_id)),
        FetchEnd(2, "ok"),
        PexHello(
            "tssnode-test",
            ("/ip4/127.0.0.1/tcp/4001",),
            (PexPeer(b.peer_id, ("/ip4/0.0.0.0/tcp/4002", "/ip6/::1/tcp/4003")),),
            "ok",
        ),
    ]


@cache
def corpus() -> list[bytes]:
    """Valid encodings of as many Wire types as the runs produce (nested ones too)."""
    found: dict[bytes, None] = {}

    def walk(value: Any) -> None:
        if isinstance(value, Wire):
            found.setdefault(value.to_bytes())
            for f in dataclasses.fields(value):  # type: ignore[arg-type]
                walk(getattr(value, f.name))
        elif isinstance(value, list | tuple):
            for v in value:
                walk(v)
        elif isinstance(value, bytes) and len(value) > 2:
            # an encoded value inside a field (a signed body, a transaction, a record)
            with contextlib.suppress(TssError):
                walk(decode_any(value))

    for msg in protocol_run()[3]:
        walk(msg)
    for data in ledger_run()[1]:
        walk(decode_any(data))
    for value in [*net_values(), *ledger_values()]:
        walk(value)
    return sorted(found)


# -- mutations -------------------------------------------------------------------------------

LEAVES = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1, 2**32, 2**63, 2**64 - 1, 2**64, 2**256, -(2**64), 10**80]),
    st.binary(max_size=40),
    st.sampled_from([b"", b"\x00", b"\x02" + b"\x11" * 32, b"\x04" * 33, b"\xff" * 65]),
    st.text(max_size=12),
    st.sampled_from(["", "tssnode.net.ack/1", "tssnode.protocol.msg/1", "/ip4/1.2.3.4/tcp/1"]),
    st.none(),
    st.booleans(),
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(0, 3), max_size=2),
)


def _mutate_plain(data: st.DataObject, plain: Any, depth: int = 0) -> Any:
    """One change somewhere in a decoded CBOR value."""
    if isinstance(plain, list) and plain and depth < 12:
        i = data.draw(st.integers(0, len(plain) - 1))
        op = data.draw(st.sampled_from(["into", "into", "into", "replace", "drop", "dup"]))
        out = list(plain)
        if op == "into":
            out[i] = _mutate_plain(data, plain[i], depth + 1)
        elif op == "replace":
            out[i] = data.draw(LEAVES)
        elif op == "drop":
            del out[i]
        else:
            out.insert(i, plain[i])
        return out
    if isinstance(plain, bytes) and plain and data.draw(st.booleans()):
        # an encoded value inside a byte string: mutate it where it is
        try:
            inner = loads_plain(plain)
        except TssError:
            inner = None
        if isinstance(inner, list):
            return dumps(_mutate_plain(data, inner, depth + 1))
        return _mutate_bytes(data, plain)
    if isinstance(plain, int) and not isinstance(plain, bool) and data.draw(st.booleans()):
        return plain + data.draw(st.sampled_from([-1, 1, -plain, 2**64, plain]))
    return data.draw(LEAVES)


def _mutate_bytes(data: st.DataObject, raw: bytes) -> bytes:
    out = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 3))):
        op = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate", "splice"]))
        i = data.draw(st.integers(0, max(0, len(out) - 1)))
        if op == "flip" and out:
            out[i] ^= data.draw(st.integers(1, 255))
        elif op == "insert":
            out[i:i] = data.draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and out:
            del out[i : i + data.draw(st.integers(1, 8))]
        elif op == "truncate":
            del out[i:]
        elif op == "splice" and out:
            j = data.draw(st.integers(0, len(out) - 1))
            out[i:i] = out[j : j + data.draw(st.integers(1, 16))]
    return bytes(out)


def mutated(data: st.DataObject, raw: bytes) -> bytes:
    """`raw` with one mutation: mostly of its decoded value, sometimes of its bytes."""
    if data.draw(st.integers(0, 3)) == 0:
        return _mutate_bytes(data, raw)
    plain = loads_plain(raw)
    try:
        return dumps(_mutate_plain(data, plain))
    except TssError:  # (a leaf that cannot be encoded: fall back to the bytes)
        return _mutate_bytes(data, raw)


_RNG_LEAVES: list[Any] = [0, -1, 1, 2**64, 2**256, -(2**64), b"", b"\x00", b"\x04" * 33, "", None]


def _leaf(rng: random.Random) -> Any:
    pick = rng.randrange(4)
    if pick == 0:
        return rng.choice(_RNG_LEAVES)
    if pick == 1:
        return rng.randrange(-(2**70), 2**70)
    if pick == 2:
        return rng.randbytes(rng.randrange(40))
    return [rng.randrange(-3, 4) for _ in range(rng.randrange(3))]


def _mutate_plain_rng(rng: random.Random, plain: Any, depth: int = 0) -> Any:
    """`_mutate_plain` driven by a seeded generator (for messages that differ between
    runs, which hypothesis cannot replay draw by draw)."""
    if isinstance(plain, list) and plain and depth < 12:
        i = rng.randrange(len(plain))
        op = rng.choice(["into", "into", "into", "replace", "drop", "dup"])
        out = list(plain)
        if op == "into":
            out[i] = _mutate_plain_rng(rng, plain[i], depth + 1)
        elif op == "replace":
            out[i] = _leaf(rng)
        elif op == "drop":
            del out[i]
        else:
            out.insert(i, plain[i])
        return out
    if isinstance(plain, bytes) and plain and rng.random() < 0.5:
        try:
            inner = loads_plain(plain)
        except TssError:
            inner = None
        if isinstance(inner, list):
            return dumps(_mutate_plain_rng(rng, inner, depth + 1))
        i = rng.randrange(len(plain))
        return plain[:i] + bytes([plain[i] ^ rng.randrange(1, 256)]) + plain[i + 1 :]
    if isinstance(plain, int) and not isinstance(plain, bool) and rng.random() < 0.5:
        return plain + rng.choice([-1, 1, -plain, 2**64, plain])
    return _leaf(rng)


def mutated_by(seed: int) -> Callable[[bytes], bytes]:
    rng = random.Random(seed)

    def change(raw: bytes) -> bytes:
        if rng.random() < 0.2:
            i = rng.randrange(len(raw))
            return raw[:i] + rng.randbytes(rng.randrange(4)) + raw[i + 1 :]
        return dumps(_mutate_plain_rng(rng, loads_plain(raw)))

    return change


def typed_only(fn: Callable[[], object]) -> None:
    """Run `fn`; a TssError is an acceptable answer, any other exception fails the test."""
    with contextlib.suppress(TssError):
        fn()


# -- every registered Wire type --------------------------------------------------------------

TAGS = sorted(REGISTRY)


def _random_bytes(data: st.DataObject) -> None:
    cls = REGISTRY[data.draw(st.sampled_from(TAGS))]
    raw = data.draw(st.binary(max_size=300))
    typed_only(lambda: cls.from_bytes(raw))
    typed_only(lambda: decode_any(raw))
    # and a well-formed array with this type's tag and random items
    items = data.draw(st.lists(LEAVES, max_size=10))
    try:
        tagged = dumps([cls.WIRE_TAG, *items])
    except TssError:
        return
    typed_only(lambda: cls.from_bytes(tagged))
    typed_only(lambda: decode_any(tagged))


@FAST
@given(st.data())
def test_random_bytes_for_every_wire_type(data: st.DataObject) -> None:
    _random_bytes(data)


@pytest.mark.slow
@SLOW
@given(st.data())
def test_random_bytes_for_every_wire_type_long(data: st.DataObject) -> None:
    _random_bytes(data)


def _mutated_encoding(data: st.DataObject) -> None:
    raw = data.draw(st.sampled_from(corpus()))
    cls = type(decode_any(raw))
    bad = mutated(data, raw)
    typed_only(lambda: cls.from_bytes(bad))
    typed_only(lambda: decode_any(bad))


def test_the_corpus_covers_the_wire_types_peers_send() -> None:
    """The mutation tests start from real encodings of every frame and message type."""
    tags = {loads_plain(raw)[0] for raw in corpus()}
    assert {cls.WIRE_TAG for cls in FRAME_TYPES} <= tags  # every ledger frame
    assert {"tssnode.protocol.msg/1", "tssnode.net.signed-envelope/1", "tssnode.tx/1"} <= tags
    assert {"tssnode.presign.r2/1", "tssnode.zk.affg/1", "tssnode.zk.mod/1"} <= tags
    assert {"tssnode.tx.sign-request/1", "tssnode.tx.blame/1", "tssnode.tx.misbehaviour/1"} <= tags
    assert len(tags) >= 75


@FAST
@given(st.data())
def test_mutated_encodings_of_every_type(data: st.DataObject) -> None:
    _mutated_encoding(data)


@pytest.mark.slow
@SLOW
@given(st.data())
def test_mutated_encodings_of_every_type_long(data: st.DataObject) -> None:
    _mutated_encoding(data)


# -- ledger frames at a replica ---------------------------------------------------------------


@cache
def _replica() -> tuple[Replica, list[bytes]]:
    """A replica of the simulated chain (with its blocks), and the validator keys."""
    net, _ = ledger_run()
    ids = sorted(net.ids)
    alive = [i for i in ids if net.nodes[i].alive and net.replica(i).is_validator]
    return net.replica(alive[0]), ids


def _ledger_frame(data: st.DataObject) -> None:
    replica, ids = _replica()
    frames = ledger_run()[1]
    raw = data.draw(st.sampled_from(frames))
    bad = (
        data.draw(st.one_of(st.just(raw), st.binary(max_size=200)))
        if data.draw(st.integers(0, 9)) == 0
        else mutated(data, raw)
    )
    sender = data.draw(st.one_of(st.sampled_from(ids), st.binary(min_size=32, max_size=32)))
    replica.receive(sender, bad)  # never raises: a bad frame is dropped and counted


@FAST
@given(st.data())
def test_a_replica_drops_mutated_ledger_frames_without_raising(data: st.DataObject) -> None:
    _ledger_frame(data)


@pytest.mark.slow
@SLOW
@given(st.data())
def test_a_replica_drops_mutated_ledger_frames_without_raising_long(data: st.DataObject) -> None:
    _ledger_frame(data)


def test_a_block_request_beyond_64_bits_is_refused_not_raised() -> None:
    """Found by the test above: `FetchBlocks(start=2**70)` reached the store's key layout
    and raised `struct.error` out of `Replica.receive`, which stops the replica service
    of the node (any admitted peer, newcomers included, could send it)."""
    from tssnode.ledger.messages import FetchBlocks

    replica, ids = _replica()
    dropped = replica.stats.dropped
    for frame_ in (FetchBlocks(2**70, 5), FetchBlocks(-1, 5), FetchBlocks(1, 2**70)):
        replica.receive(ids[1], frame_.to_bytes())
    assert replica.stats.dropped >= dropped + 1


# -- protocol envelopes and whole phases -------------------------------------------------------


def _protocol_message(data: st.DataObject) -> None:
    msg = data.draw(st.sampled_from(protocol_run()[3]))
    raw = msg.to_bytes()
    bad = mutated(data, raw)
    typed_only(lambda: Message.from_bytes(bad))
    body_cls = type(decode_any(msg.body))
    bad_body = mutated(data, msg.body)
    typed_only(lambda: body_cls.from_bytes(bad_body))


@FAST
@given(st.data())
def test_mutated_protocol_envelopes_and_bodies(data: st.DataObject) -> None:
    _protocol_message(data)


@dataclasses.dataclass(frozen=True)
class _Tamper(Fault):
    """Replaces the `nth` message a party sends with a mutated body, re-signed by the
    sender (so it passes the envelope checks and reaches the round's maths)."""

    nth: int = 0
    change: Callable[[bytes], bytes] = dataclasses.field(default=lambda b: b, compare=False)
    count: list[int] = dataclasses.field(default_factory=lambda: [0], compare=False)

    def matches(self, msg: Message, to: int) -> bool:
        self.count[0] += 1
        return self.count[0] - 1 == self.nth

    def apply(self, msg: Message, to: int, key: IdentityKey) -> Message | None:
        from tssnode.protocol.base import envelope_digest

        body = self.change(msg.body)
        digest = envelope_digest(
            msg.ssid, msg.round, msg.sender, msg.recipient, hashlib.sha256(body).digest()
        )
        return dataclasses.replace(msg, body=body, signature=key.sign(digest))


def _phase(data: st.DataObject, phase: str) -> None:
    group, shares, presigs, _ = protocol_run()
    seed = data.draw(st.integers(0, 9))
    fresh = LocalGroup(group.parties, group.threshold, TIER, seed=seed)
    change = mutated_by(data.draw(st.integers(0, 2**32)))
    tamper = _Tamper(0, 0, nth=data.draw(st.integers(0, 30)), change=change)

    def run() -> RunResult:
        if phase == "keygen":
            return fresh.keygen([tamper])
        if phase == "sign":
            return group.sign(shares, presigs, hashlib.sha256(b"x").digest(), [tamper])
        if phase == "presign":
            return group.presign(shares, (1, 3), faults=[tamper])
        source = pool_primes(TIER, random.Random(seed))
        return group.aux(shares, source, faults=[tamper])

    # stricter than "typed errors only": the round engine turns every bad message into a
    # refusal or a blame, so the phase itself never raises
    assert isinstance(run(), RunResult)


@FAST
@given(st.data())
def test_a_keygen_with_one_tampered_message_ends_in_a_result_or_a_blame(
    data: st.DataObject,
) -> None:
    _phase(data, "keygen")


@settings(FAST, max_examples=150)
@given(st.data())
def test_a_signing_with_one_tampered_message_ends_in_a_result_or_a_blame(
    data: st.DataObject,
) -> None:
    _phase(data, "sign")


@pytest.mark.slow
@settings(FAST, max_examples=150)
@given(st.data(), st.sampled_from(["aux", "presign"]))
def test_aux_and_presign_with_one_tampered_message(data: st.DataObject, phase: str) -> None:
    _phase(data, phase)


@pytest.mark.slow
@SLOW
@given(st.data(), st.sampled_from(["keygen", "sign"]))
def test_keygen_and_sign_with_one_tampered_message_long(data: st.DataObject, phase: str) -> None:
    _phase(data, phase)


# -- net envelopes, frames on a stream, peer ids ------------------------------------------------


def _net(data: st.DataObject) -> None:
    base = data.draw(st.sampled_from(net_values())).to_bytes()
    raw = data.draw(st.one_of(st.binary(max_size=300), st.just(mutated(data, base))))
    typed_only(lambda: direct.decode_envelope(raw))
    typed_only(lambda: decode_one_of((SignedEnvelope, FetchEnd), raw))
    for cls in (SignedEnvelope, Ack, FetchRequest, FetchEnd, PexHello):
        typed_only(lambda cls=cls: decode(cls, raw))

    def envelope_checks() -> None:
        signed = decode(SignedEnvelope, raw)
        signed.envelope.check()
        signed.signature_valid()

    typed_only(envelope_checks)


@FAST
@given(st.data())
def test_mutated_net_envelopes(data: st.DataObject) -> None:
    _net(data)


@pytest.mark.slow
@SLOW
@given(st.data())
def test_mutated_net_envelopes_long(data: st.DataObject) -> None:
    _net(data)


class _Stream:
    """A stream that returns `data` in chunks of the given sizes, then EOF."""

    def __init__(self, data: bytes, chunks: list[int]) -> None:
        self.data, self.chunks = data, chunks

    async def read(self, n: int) -> bytes:
        await trio.lowlevel.checkpoint()
        size = min(n, self.chunks.pop(0) if self.chunks else n)
        out, self.data = self.data[:size], self.data[size:]
        return out


@FAST
@given(
    st.one_of(
        st.binary(max_size=64),
        st.builds(lambda b: frame(b), st.binary(max_size=64)),
        st.builds(lambda n, b: n.to_bytes(4, "big") + b, st.integers(0, 2**32 - 1), st.binary()),
    ),
    st.lists(st.integers(1, 7), max_size=20),
)
def test_frames_on_a_stream(raw: bytes, chunks: list[int]) -> None:
    guard = StreamGuard(peer_bytes=48, total_bytes=64)

    async def read() -> None:
        body = await read_frame(_Stream(raw, chunks), 1024, 5.0, (guard, b"peer"))
        assert 0 < len(body) <= 48

    typed_only(lambda: trio.run(read))
    assert guard.bytes == 0  # whatever happened, the reservation was released


@FAST
@given(st.one_of(st.text(max_size=70), st.builds(lambda b: b.hex(), st.binary(max_size=40))))
def test_peer_ids_in_text(text: str) -> None:
    typed_only(lambda: peerid.from_text(text))


@FAST
@given(st.binary(max_size=60))
def test_peer_ids_in_binary(raw: bytes) -> None:
    typed_only(lambda: peerid.public_key(raw))


def test_validators_of_the_simulated_chain_are_valid() -> None:
    """(The corpus is what it claims: a real chain that a fifth node joined.)"""
    replica, _ = _replica()
    assert replica.height >= 3 and replica.view >= 1
    assert all(isinstance(v, Validator) for v in replica.chain.state.validators.values())
