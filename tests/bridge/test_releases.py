"""The bridge's release side on a real ledger state: settings by 2f+1 votes, the median fee
rate, burns final on 2f+1 identical observations, the group's coins from deposits, a
release built byte for byte alike from ledger state, its inputs signed by the derived keys
(checked by Bitcoin Core's engine), confirmed, bumped by replace-by-fee, and a sweep."""

from __future__ import annotations

from tests.bridge.test_app import APPS, SEED, TO, _address, _observed, bridge, ready  # noqa: F401
from tests.ledger.conftest import Tx, real_signature, run_block
from tssnode.bridge.btctx import Coin as TxCoin
from tssnode.bridge.btctx import address_script, txid, verify_spends
from tssnode.bridge.hashes import deposit_path
from tssnode.bridge.records import (
    BURN_RELEASED,
    BURN_RELEASING,
    BURN_UNPAYABLE,
    MAIN_PATH,
    R_CONFIRMED,
    R_REPLACED,
    R_SIGNED,
    R_SIGNING,
    outpoint,
    p2wpkh_script,
    release_subject,
)
from tssnode.bridge.releases import fee_shares, median
from tssnode.bridge.transactions import (
    BumpRequest,
    BurnObserved,
    DepositAddressRequest,
    FeeReport,
    InputSigned,
    ReleaseConfirmed,
    ReleaseSetup,
    signed_result,
)
from tssnode.crypto.group import Q
from tssnode.crypto.identity import IdentityKey
from tssnode.crypto.signature import Signature
from tssnode.ledger.app import SignSubject
from tssnode.ledger.state import LedgerState

#: a regtest P2WPKH address the burns pay (any valid one: nothing is sent here)
PAYEE = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
SETUP = ReleaseSetup(
    evm_confirmations=3, bump_after=6, min_release_sats=10_000, max_fee_rate=500, sweep_at=0
)


def _burn(nonce: int, amount: int = 30_000_000, to: str = PAYEE) -> BurnObserved:
    return BurnObserved(nonce, to.encode(), amount, b"\x0e" * 32, b"\x0b" * 32, 77)


def _setup(st_: LedgerState, keys: list[IdentityKey], tx: Tx, setup: ReleaseSetup = SETUP) -> None:
    assert run_block(st_, *(tx(k, setup) for k in keys[:3])) == ()


def _fees(st_: LedgerState, keys: list[IdentityKey], tx: Tx, *rates: int) -> None:
    assert run_block(st_, *(tx(k, FeeReport(r)) for k, r in zip(keys, rates, strict=False))) == ()


def _deposit(
    st_: LedgerState, keys: list[IdentityKey], tx: Tx, nonce: bytes, txid_: bytes, value: int
) -> bytes:
    """A deposit address for `nonce` and a final deposit of `value` to it: its outpoint."""
    from tssnode.bridge.hashes import g_hash, p_hash, s_hash

    assert run_block(st_, tx(keys[0], DepositAddressRequest(TO, nonce))) == ()
    g = g_hash(p_hash(b""), s_hash("Ethereum"), TO, nonce)
    kh = bridge(st_).addresses[g].key_hash
    obs = _observed(kh, g, txid=txid_, vout=0, value=value)
    assert run_block(st_, *(tx(k, obs) for k in keys[:3])) == ()
    return outpoint(txid_, 0)


def _sign_all(st_: LedgerState, keys: list[IdentityKey], tx: Tx, seq: int, attempt: int) -> None:
    """Every input signed, as the signers would: over the sighash the bridge asks for, with
    the key at the path it names (`query("sign/…")`, what the registry checks)."""
    rel = bridge(st_).releases[seq.to_bytes(8, "big") + attempt.to_bytes(4, "big")]
    for i in range(len(rel.inputs)):
        subject = release_subject(seq, attempt, i)
        ask = bridge(st_).query(f"sign/{subject.hex()}")
        assert isinstance(ask, SignSubject) and ask.digest == rel.sighashes[i]
        sig = real_signature(ask.digest, ask.path, seed=SEED)
        assert run_block(st_, tx(keys[i % 4], signed_result(subject, sig))) == ()


def test_median_and_fee_shares():
    assert median([5, 1, 9]) == 5 and median([1, 2, 3, 1000]) == 2
    assert fee_shares(10, 3) == [4, 3, 3] and sum(fee_shares(1001, 7)) == 1001


def test_settings_fee_rates_and_burns_by_votes(
    ready: LedgerState,  # noqa: F811
    keys: list[IdentityKey],
    tx: Tx,
) -> None:
    (why,) = run_block(ready, tx(keys[0], _burn(1)))
    assert "not in force" in why[1]
    for bad, reason in (
        (ReleaseSetup(0, 6, 10_000, 500, 0), "evm_confirmations"),
        (ReleaseSetup(3, 6, 100, 500, 0), "min_release_sats"),
        (ReleaseSetup(3, 6, 10_000, 0, 0), "max_fee_rate"),
    ):
        (why,) = run_block(ready, tx(keys[0], bad))
        assert reason in why[1], why
    _setup(ready, keys, tx)
    b = bridge(ready)
    assert b.release_config is not None and b.release_config.bump_after == 6
    # fee rates: the median of 2f+1 current reports; a liar cannot move it out of range
    _fees(ready, keys, tx, 10, 12)
    assert b.fee_rate(ready.height) is None  # two reports of four validators: not enough
    _fees(ready, keys[2:], tx, 100_000)
    assert b.fee_rate(ready.height) == 12
    # burns: final on 2f+1 identical observations, once
    for bad, reason in (
        (_burn(1, amount=9_999), "at least 10000"),
        (BurnObserved(1, b"", 20_000, b"\x0e" * 32, b"\x0b" * 32, 77), "1 to 90"),
    ):
        (why,) = run_block(ready, tx(keys[0], bad))
        assert reason in why[1], why
    run_block(ready, tx(keys[0], _burn(1)), tx(keys[1], _burn(1, amount=29_000_000)))
    run_block(ready, tx(keys[2], _burn(1)))
    assert 1 not in b.burns  # two votes for one amount, one for another
    assert run_block(ready, tx(keys[1], _burn(1))) == ()  # its vote follows
    assert b.burns[1].amount == 30_000_000 and b.burns[1].script == address_script(PAYEE, "regtest")
    (why,) = run_block(ready, tx(keys[3], _burn(1)))
    assert "already final" in why[1]
    # an address that is no standard output on regtest: recorded, never paid
    run_block(
        ready, *(tx(k, _burn(2, to="bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4")) for k in keys[:3])
    )
    assert b.burns[2].status == BURN_UNPAYABLE and b.burns[2].script == b""


def test_a_release_is_built_signed_checked_by_the_kernel_and_confirmed(
    ready: LedgerState,  # noqa: F811
    keys: list[IdentityKey],
    tx: Tx,
) -> None:
    b = bridge(ready)
    big = _deposit(ready, keys, tx, b"\x01" * 32, b"\xa1" * 32, 40_000_000)
    small = _deposit(ready, keys, tx, b"\x02" * 32, b"\xa2" * 32, 25_000_000)
    assert b.coins[big].path == deposit_path(b.deposits[big].g_hash)
    _setup(ready, keys, tx)
    _fees(ready, keys, tx, 10, 10, 10)
    run_block(ready, *(tx(k, _burn(7, 50_000_000)) for k in keys[:3]))
    ((key, rel),) = b.releases.items()
    assert rel.status == R_SIGNING and rel.burns == (7,) and rel.fee_rate == 10
    assert rel.inputs == (big, small)  # largest first, until the burn is covered
    assert b.burns[7].status == BURN_RELEASING
    assert all(b.coins[op].spender == rel.seq for op in rel.inputs)
    (payout, change) = rel.outputs
    main_script = p2wpkh_script(b.main_key()[1])
    assert payout[0] == address_script(PAYEE, "regtest") and change == (main_script, 15_000_000)
    assert payout[1] == 50_000_000 - rel.fee and rel.fee % 10 == 0  # the burner pays the fee
    assert txid(rel.tx) == rel.txid
    # nothing else is built while it is in flight
    run_block(ready, *(tx(k, _burn(8, 1_000_000)) for k in keys[:3]))
    assert len(b.releases) == 1
    # the inputs: a signature by another key, or a high s, is refused
    subject = release_subject(rel.seq, 0, 0)
    wrong = real_signature(rel.sighashes[0], seed=SEED)  # the root key, not the deposit's
    (why,) = run_block(ready, tx(keys[0], signed_result(subject, wrong)))
    assert "does not verify" in why[1]
    good = real_signature(rel.sighashes[0], b.coins[big].path, seed=SEED)
    high = Signature(good.r, Q - good.s, good.v ^ 1)
    (why,) = run_block(ready, tx(keys[0], signed_result(subject, high)))
    assert "high s" in why[1]
    _sign_all(ready, keys, tx, rel.seq, 0)
    rel = b.releases[key]
    assert rel.status == R_SIGNED and txid(rel.signed_tx) == rel.txid
    spent = [
        TxCoin(b.coins[op].txid, b.coins[op].vout, b.coins[op].value, b.coins[op].key_hash)
        for op in rel.inputs
    ]
    verify_spends(rel.signed_tx, spent)  # Bitcoin Core's engine checks every input
    (why,) = run_block(ready, tx(keys[0], InputSigned(rel.seq, 0, 0, good)))
    assert "is signed" in why[1]
    # confirmed by 2f+1: inputs spent, change a coin, the burn released
    seen = ReleaseConfirmed(rel.seq, 0, rel.txid, b"\xbc" * 32, 140)
    (why,) = run_block(
        ready, tx(keys[0], ReleaseConfirmed(rel.seq, 0, b"\x00" * 32, b"\xbc" * 32, 140))
    )
    assert "txid" in why[1]
    run_block(ready, *(tx(k, seen) for k in keys[:3]))
    assert b.releases[key].status == R_CONFIRMED
    assert b.burns[7].status == BURN_RELEASED and b.burns[7].paid == payout[1]
    assert big not in b.coins and small not in b.coins
    change_coin = b.coins[outpoint(rel.txid, 1)]
    assert change_coin.value == 15_000_000 and change_coin.path == MAIN_PATH
    # the next burn waited, and now goes out of the change
    (second,) = [r for k, r in b.releases.items() if k != key]
    assert second.burns == (8,) and second.inputs == (outpoint(rel.txid, 1),)
    # and all of it survives a restart
    again = LedgerState.from_entries(ready.genesis, ready.entries(), APPS)
    assert bridge(again).releases == b.releases and bridge(again).coins == b.coins
    assert bridge(again).burns == b.burns and again.digest() == ready.digest()


def test_a_stuck_release_is_bumped_and_whichever_attempt_confirms_is_recorded(
    ready: LedgerState,  # noqa: F811
    keys: list[IdentityKey],
    tx: Tx,
) -> None:
    b = bridge(ready)
    op = _deposit(ready, keys, tx, b"\x01" * 32, b"\xa1" * 32, 40_000_000)
    _setup(ready, keys, tx)
    _fees(ready, keys, tx, 2, 2, 2)
    run_block(ready, *(tx(k, _burn(1, 10_000_000)) for k in keys[:3]))
    first = b.releases[(1).to_bytes(8, "big") + (0).to_bytes(4, "big")]
    (why,) = run_block(ready, tx(keys[0], BumpRequest(1, 0)))
    assert "not signed" in why[1]
    _sign_all(ready, keys, tx, 1, 0)
    run_block(ready, *(tx(k, BumpRequest(1, 0)) for k in keys[:3]))
    bumped = b.releases[(1).to_bytes(8, "big") + (1).to_bytes(4, "big")]
    assert b.releases[(1).to_bytes(8, "big") + bytes(4)].status == R_REPLACED
    assert bumped.inputs == first.inputs == (op,) and bumped.fee_rate == 3 > first.fee_rate
    assert bumped.fee > first.fee and bumped.txid != first.txid  # BIP 125: pays more
    _sign_all(ready, keys, tx, 1, 1)
    # the replaced attempt confirmed after all (it was mined first): that is what counts
    seen = ReleaseConfirmed(1, 0, first.txid, b"\xbc" * 32, 150)
    run_block(ready, *(tx(k, seen) for k in keys[:3]))
    assert b.releases[(1).to_bytes(8, "big") + bytes(4)].status == R_CONFIRMED
    assert b.releases[(1).to_bytes(8, "big") + (1).to_bytes(4, "big")].status == R_REPLACED
    assert b.burns[1].paid == first.outputs[0][1] and op not in b.coins


def test_deposits_are_swept_into_the_main_key_when_no_burn_waits(
    ready: LedgerState,  # noqa: F811
    keys: list[IdentityKey],
    tx: Tx,
) -> None:
    b = bridge(ready)
    _setup(ready, keys, tx, ReleaseSetup(3, 6, 10_000, 500, sweep_at=2))
    _fees(ready, keys, tx, 5, 5, 5)
    a = _deposit(ready, keys, tx, b"\x01" * 32, b"\xa1" * 32, 400_000)
    assert b.releases == {}  # one deposit: below sweep_at
    c = _deposit(ready, keys, tx, b"\x02" * 32, b"\xa2" * 32, 300_000)
    ((_, sweep),) = b.releases.items()
    assert sweep.burns == () and set(sweep.inputs) == {a, c}
    ((script, value),) = sweep.outputs
    assert script == p2wpkh_script(b.main_key()[1]) and value == 700_000 - sweep.fee
    assert sweep.change == value  # confirmed, it is the main key's coin
    # what the nodes are asked to have signed: both mints, then each input with its path
    wanted = b.wanted_signatures()
    assert [w[0] for w in wanted] == sorted([a, c]) + [release_subject(1, 0, i) for i in (0, 1)]
    for subject, digest, path in wanted[2:]:
        ask = b.query(f"sign/{subject.hex()}")
        assert isinstance(ask, SignSubject) and (ask.digest, ask.path) == (digest, path)
        assert path == b.coins[sweep.inputs[subject[-1]]].path and len(path) == 8


def test_burns_that_wait_together_are_paid_in_one_release(
    ready: LedgerState,  # noqa: F811
    keys: list[IdentityKey],
    tx: Tx,
) -> None:
    """Burns final while no fee rate is agreed wait; the first release then pays them all
    (oldest first), each output its amount less an equal share of the one fee."""
    b = bridge(ready)
    _deposit(ready, keys, tx, b"\x01" * 32, b"\xa1" * 32, 40_000_000)
    _setup(ready, keys, tx)
    for nonce, amount in ((3, 5_000_000), (1, 7_000_000), (2, 6_000_000)):
        run_block(ready, *(tx(k, _burn(nonce, amount)) for k in keys[:3]))
    assert b.releases == {}  # no agreed fee rate yet
    _fees(ready, keys, tx, 8, 9, 10)
    ((_, rel),) = b.releases.items()
    assert rel.burns == (1, 2, 3) and rel.fee_rate == 9
    shares = [7_000_000 - rel.outputs[0][1], 6_000_000 - rel.outputs[1][1],
              5_000_000 - rel.outputs[2][1]]  # fmt: skip
    assert max(shares) - min(shares) <= 1 and sum(shares) == rel.fee
    assert rel.outputs[3] == (p2wpkh_script(b.main_key()[1]), 40_000_000 - 18_000_000)
