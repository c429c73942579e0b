"""`tssnode.testing.protocol_runner` on a real phase (keygen at the test tier, fast): it
delivers every message so all parties finish with the same key, counts what it moved,
applies fault rules to the copies they name, and turns a party that never hears from a
sender into a timeout blame of that sender."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from tests.conftest import TEST
from tssnode.crypto.identity import IdentityKey
from tssnode.protocol import keygen
from tssnode.protocol.ssid import keygen_ssid
from tssnode.testing.protocol_faults import Drop, Fault, Tamper, replace_field
from tssnode.testing.protocol_runner import RunResult, make_configs, run_phase

PARTIES = (1, 2, 3)


def _keygen(seed: int = 7, faults: Sequence[Fault] = ()) -> RunResult:
    ssid = keygen_ssid(TEST, PARTIES, 1, hashlib.sha256(b"runner").digest())
    cfgs = make_configs(PARTIES, 1, TEST, ssid, seed)
    return run_phase({p: keygen.start(c) for p, c in cfgs.items()}, faults=faults)


def test_every_party_finishes_with_the_same_key():
    out = _keygen()
    shares = out.only_result()
    assert sorted(shares) == list(PARTIES) and not out.aborts and not out.stopped
    keys = {s.key.public_key for s in shares.values()}
    assert len(keys) == 1
    # 3 broadcast rounds to 2 peers each + one direct share to each other party
    assert out.messages == 3 * 3 * 2 + 3 * 2
    assert out.bytes_sent > 0 and out.refused == 0


def test_make_configs_is_seeded_and_keeps_given_identities():
    ids = {p: IdentityKey.from_seed(bytes([p]) * 32) for p in PARTIES}
    a = make_configs(PARTIES, 1, TEST, b"s" * 32, 3, ids)
    b = make_configs(PARTIES, 1, TEST, b"s" * 32, 3, ids)
    assert [c.rng.random() for c in a.values()] == [c.rng.random() for c in b.values()]
    assert {p: c.identities[p] for p, c in a.items()} == {
        p: k.public_bytes() for p, k in ids.items()
    }
    assert a[2].parties == PARTIES and a[2].self_id == 2
    assert _keygen(seed=9).only_result()[1].key == _keygen(seed=9).only_result()[1].key


def test_a_dropped_message_becomes_a_timeout_blame_of_its_sender():
    out = _keygen(faults=[Drop(sender=2, round=4, recipient=1, broadcast=False)])
    assert set(out.aborts) == {1}  # only party 1 lost a message
    assert out.culprits() == {2}
    assert out.aborts[1].blame.check == "timeout: message never arrived"
    assert set(out.results) == {2, 3}


def test_a_tampered_share_is_blamed_on_its_sender():
    bump = replace_field("share", lambda s: s + 1)
    bad = Tamper(sender=3, round=4, recipient=2, broadcast=False, mutate=bump)
    out = _keygen(faults=[bad])
    assert set(out.aborts) == {2}
    assert out.culprits() == {3}
    assert out.aborts[2].blame.check.startswith("share:")
