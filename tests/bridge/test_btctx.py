"""The Bitcoin side of BTC releases (`tssnode.bridge.btctx`), against outside vectors and
independent implementations: BIP-143's native P2WPKH example (digest, signature, the
signed transaction through the kernel), BIP-350's address vectors, python-bitcoinlib's
serialization, weights, addresses and txids, libbitcoinkernel's script check, and the
regtest service's mempool (Core's relay policy) taking a release and mining it.

Vectors are copied from the BIPs (bitcoin/bips: bip-0143.mediawiki "Native P2WPKH",
bip-0350.mediawiki "Test vectors for v0-v16 native segregated witness addresses"); the
BIP-143 unsigned transaction and digest are also python-bitcoinlib's own test
(bitcoin/tests/test_segwit.py, test_p2wpkh_signaturehash).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

import bech32
import bitcoin
import bitcoin.core
import coincurve
import pbk
import pytest
from bitcoin.core import CMutableTransaction, CTransaction, CTxInWitness, CTxWitness
from bitcoin.core.script import (
    SIGHASH_NONE,
    SIGVERSION_WITNESS_V0,
    CScript,
    CScriptWitness,
    SignatureHash,
)
from bitcoin.wallet import (
    CBitcoinAddress,
    P2PKHBitcoinAddress,
    P2SHBitcoinAddress,
    P2WPKHBitcoinAddress,
    P2WSHBitcoinAddress,
)
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st

from tssnode.bridge import btctx
from tssnode.bridge.btctx import (
    MAX_MONEY,
    RBF_SEQUENCE,
    BtcTxError,
    Coin,
    Payout,
    ScriptRejected,
    address_script,
    dust_limit,
    is_standard_output,
    release_vsize,
    release_weight,
    sighashes,
    signed_release,
    txid,
    unsigned_release,
    verify_spends,
)
from tssnode.bridge.kernel import REJECTED, first_script_failure
from tssnode.crypto.addresses import btc_p2wpkh
from tssnode.crypto.group import Point, Q
from tssnode.crypto.signature import HALF_Q
from tssnode.regtest import addresses as regtest_addresses
from tssnode.regtest import policy as regtest_policy
from tssnode.regtest import scripts as regtest_scripts
from tssnode.regtest.methods import Methods
from tssnode.regtest.node import RegtestNode, Settings
from tssnode.regtest.wallet import sign_p2wpkh

# -- keys, coins and signatures the tests make ----------------------------------------------


def _hash160(data: bytes) -> bytes:
    return hashlib.new("ripemd160", hashlib.sha256(data).digest()).digest()


KEYS = [
    coincurve.PrivateKey(hashlib.sha256(f"release key {i}".encode()).digest()) for i in range(3)
]
PUBS = [k.public_key.format(compressed=True) for k in KEYS]
OTHER = coincurve.PrivateKey(hashlib.sha256(b"someone else").digest())


def _coin(i: int, value: int, key: int | None = None) -> Coin:
    return Coin(
        hashlib.sha256(f"funding {i}".encode()).digest(),
        i % 3,
        value,
        _hash160(PUBS[i if key is None else key]),
    )


COINS = [_coin(0, 120_000), _coin(1, 2_500_000), _coin(2, 47_000)]
P2PKH_OUT = b"\x76\xa9\x14" + _hash160(OTHER.public_key.format()) + b"\x88\xac"
P2TR_OUT = b"\x51\x20" + OTHER.public_key.format()[1:]
CHANGE_OUT = b"\x00\x14" + _hash160(PUBS[0])


def _rs(der: bytes) -> tuple[int, int]:
    r, s = decode_dss_signature(der)
    return r, min(s, Q - s)  # normalised to low s (libsecp256k1 makes it low already)


def _sign(key: coincurve.PrivateKey, digest: bytes) -> tuple[int, int]:
    return _rs(key.sign(digest, hasher=None))


def _witnesses(tx: bytes) -> list[list[bytes]]:
    obj = CTransaction.deserialize(tx)
    return [[bytes(item) for item in w.scriptWitness.stack] for w in obj.wit.vtxinwit]


def _with_witness(tx: bytes, index: int, stack: list[bytes]) -> bytes:
    """The same transaction with input `index`'s witness replaced, by python-bitcoinlib."""
    mutable = CMutableTransaction.from_tx(CTransaction.deserialize(tx))
    stacks = _witnesses(tx)
    stacks[index] = stack
    mutable.wit = CTxWitness([CTxInWitness(CScriptWitness(s)) for s in stacks])
    return bytes(mutable.serialize())


def _weight(tx: bytes) -> int:
    return int(CTransaction.deserialize(tx).calc_weight())


def _vsize(tx: bytes) -> int:
    return -(-_weight(tx) // 4)


def _der(r: int, s: int) -> bytes:
    def integer(v: int) -> bytes:
        body = v.to_bytes((v.bit_length() + 8) // 8, "big")
        return b"\x02" + bytes([len(body)]) + body

    body = integer(r) + integer(s)
    return b"\x30" + bytes([len(body)]) + body


def _release(
    rate: int = 7, coins: list[Coin] = COINS, locktime: int = 0
) -> tuple[bytes, bytes, list[bytes], int]:
    """(unsigned, signed, digests, fee) of a release of `coins` to two payouts + change."""
    payouts = [Payout(P2PKH_OUT, 600_000), Payout(P2TR_OUT, 1_000_000)]
    scripts = [p.script for p in payouts] + [CHANGE_OUT]
    fee = rate * release_vsize(len(coins), scripts)
    change = sum(c.value for c in coins) - sum(p.value for p in payouts) - fee
    payouts.append(Payout(CHANGE_OUT, change))
    unsigned = unsigned_release(coins, payouts, locktime=locktime)
    digests = sighashes(unsigned, coins)
    owners = [[_hash160(p) for p in PUBS].index(c.key_hash) for c in coins]
    sigs = [_sign(KEYS[o], d) for o, d in zip(owners, digests, strict=True)]
    signed = signed_release(unsigned, sigs, [PUBS[o] for o in owners])
    return unsigned, signed, digests, fee


# -- BIP-143 -----------------------------------------------------------------------------------

BIP143_UNSIGNED = bytes.fromhex(
    "0100000002fff7f7881a8099afa6940d42d1e7f6362bec38171ea3edf433541db4e4ad969f0000000000eef"
    "fffffef51e1b804cc89d182d279655c3aa89e815b1b309fe287d9b2b55d57b90ec68a0100000000ffffffff"
    "02202cb206000000001976a9148280b37df378db99f66f85c95a783a76ac7a6d5988ac9093510d00000000"
    "1976a9143bde42dbee7e4dbe6a21b2d50ce2f0167faa815988ac11000000"
)
BIP143_SIGNED = bytes.fromhex(
    "01000000000102fff7f7881a8099afa6940d42d1e7f6362bec38171ea3edf433541db4e4ad969f000000004"
    "94830450221008b9d1dc26ba6a9cb62127b02742fa9d754cd3bebf337f7a55d114c8e5cdd30be022040529b"
    "194ba3f9281a99f2b1c0a19c0489bc22ede944ccf4ecbab4cc618ef3ed01eeffffffef51e1b804cc89d182d2"
    "79655c3aa89e815b1b309fe287d9b2b55d57b90ec68a0100000000ffffffff02202cb206000000001976a91"
    "48280b37df378db99f66f85c95a783a76ac7a6d5988ac9093510d000000001976a9143bde42dbee7e4dbe6a"
    "21b2d50ce2f0167faa815988ac000247304402203609e17b84f6a7d30c80bfa610b5b4542f32a8a0d5447a"
    "12fb1366d7f01cc44a0220573a954c4518331561406f90300e8f3358f51928d43c212a8caed02de67eebee"
    "0121025476c2e83188368da1ff3e292e7acafcdb3566bb0ad253f62fc70f07aeee635711000000"
)
# input 0: an ordinary P2PK of 6.25 BTC; input 1: P2WPKH of 6 BTC
BIP143_P2PK = bytes.fromhex(
    "2103c9f4836b9a4f77fc0d81f7bcb01b7f1b35916864b9476c241ce9fc198bd25432ac"
)
BIP143_SECRET = bytes.fromhex("619c335025c7f4012e556c2a58b2506e30b8511b53ade95ea316fd8c3286feb9")
BIP143_PUBKEY = bytes.fromhex("025476c2e83188368da1ff3e292e7acafcdb3566bb0ad253f62fc70f07aeee6357")
BIP143_SIGHASH = "c37af31116d1b27caf68aae9e3ac82f1477929014d5b917657d0eb49478cb670"
BIP143_SIGNATURE = (
    "304402203609e17b84f6a7d30c80bfa610b5b4542f32a8a0d5447a12fb1366d7f01cc44a"
    "0220573a954c4518331561406f90300e8f3358f51928d43c212a8caed02de67eebee"
)
BIP143_COINS = [
    Coin(
        bytes.fromhex("fff7f7881a8099afa6940d42d1e7f6362bec38171ea3edf433541db4e4ad969f"),
        0,
        625_000_000,
        bytes(20),  # not P2WPKH: its digest is not used
    ),
    Coin(
        bytes.fromhex("ef51e1b804cc89d182d279655c3aa89e815b1b309fe287d9b2b55d57b90ec68a"),
        1,
        600_000_000,
        bytes.fromhex("1d0f172a0ecb48aee1be1f2687d2963ae33f71a1"),
    ),
]


def test_bip143_native_p2wpkh_digest_signature_and_kernel():
    digest = sighashes(BIP143_UNSIGNED, BIP143_COINS)[1]
    assert digest.hex() == BIP143_SIGHASH
    assert _hash160(BIP143_PUBKEY) == BIP143_COINS[1].key_hash
    # RFC 6979 signing of our digest reproduces the signature the BIP publishes
    key = coincurve.PrivateKey(BIP143_SECRET)
    assert key.public_key.format() == BIP143_PUBKEY
    assert key.sign(digest, hasher=None).hex() == BIP143_SIGNATURE
    assert _witnesses(BIP143_SIGNED)[1] == [bytes.fromhex(BIP143_SIGNATURE + "01"), BIP143_PUBKEY]
    # the digest commits to the amount
    other = [BIP143_COINS[0], Coin(*[getattr(BIP143_COINS[1], f) for f in ("txid", "vout")],
                                   600_000_001, BIP143_COINS[1].key_hash)]  # fmt: skip
    assert sighashes(BIP143_UNSIGNED, other)[1].hex() != BIP143_SIGHASH
    # the published signed transaction through the kernel: accepted with the right amounts
    spent = [(625_000_000, BIP143_P2PK), (600_000_000, BIP143_COINS[1].script)]
    assert first_script_failure(BIP143_SIGNED, spent) is None
    spent[1] = (600_000_001, BIP143_COINS[1].script)
    failure = first_script_failure(BIP143_SIGNED, spent)
    assert failure is not None and failure.index == 1 and failure.reason == REJECTED


def test_txid_of_the_bip143_transactions_agrees_with_bitcoinlib_and_the_kernel():
    for raw in (BIP143_UNSIGNED, BIP143_SIGNED):
        ours = txid(raw)
        assert ours == bytes(CTransaction.deserialize(raw).GetTxid())
        assert ours == bytes(pbk.Transaction(raw).txid)
    # a signature in a scriptSig (input 0 is P2PK) is part of the txid; a witness is not
    assert txid(BIP143_SIGNED) != txid(BIP143_UNSIGNED)
    stripped = CMutableTransaction.from_tx(CTransaction.deserialize(BIP143_SIGNED))
    stripped.wit = CTxWitness()
    assert txid(BIP143_SIGNED) == txid(bytes(stripped.serialize()))


# -- a release of three coins ------------------------------------------------------------------


def test_a_release_signed_input_by_input_passes_the_kernel():
    unsigned, signed, digests, _ = _release()
    assert len(set(digests)) == 3
    verify_spends(signed, COINS)
    # the kernel itself, and the digests from the signed transaction too
    assert first_script_failure(signed, [(c.value, c.script) for c in COINS]) is None
    assert sighashes(signed, COINS) == digests
    # python-bitcoinlib reads what we wrote: version, order, sequences, empty scriptSigs
    tx = CTransaction.deserialize(unsigned)
    assert (tx.nVersion, tx.nLockTime, tx.has_witness()) == (2, 0, False)
    assert [(bytes(i.prevout.hash), i.prevout.n) for i in tx.vin] == [c.outpoint for c in COINS]
    assert all(i.nSequence == RBF_SEQUENCE and bytes(i.scriptSig) == b"" for i in tx.vin)
    assert [bytes(o.scriptPubKey) for o in tx.vout] == [P2PKH_OUT, P2TR_OUT, CHANGE_OUT]
    assert signed[4:6] == b"\x00\x01" and unsigned[4:6] != b"\x00\x01"
    assert _witnesses(signed) == [
        [_der(*_sign(KEYS[i], digests[i])) + b"\x01", PUBS[i]] for i in range(3)
    ]


def test_the_signed_release_is_byte_identical_to_python_bitcoinlibs():
    """The regtest wallet's signer (python-bitcoinlib's witness serialization,
    libsecp256k1's DER) makes the same bytes from the same keys."""
    unsigned, signed, _, _ = _release()
    theirs = sign_p2wpkh(
        CMutableTransaction.from_tx(CTransaction.deserialize(unsigned)),
        [(KEYS[i].secret, COINS[i].value) for i in range(3)],
    )
    assert theirs.raw == signed


@pytest.mark.parametrize("rate", [1, 2, 7, 53])
def test_the_fee_never_falls_below_the_rate(rate):
    _, signed, _, fee = _release(rate)
    paid = sum(c.value for c in COINS) - sum(
        int(o.nValue) for o in CTransaction.deserialize(signed).vout
    )
    assert paid == fee
    actual = _vsize(signed)
    estimate = release_vsize(3, [P2PKH_OUT, P2TR_OUT, CHANGE_OUT])
    assert fee / actual >= rate
    # a real signature is a byte or two short of the longest at most; witness bytes weigh ¼
    assert 0 <= estimate - actual <= 2
    assert _weight(signed) <= release_weight(3, [P2PKH_OUT, P2TR_OUT, CHANGE_OUT])


def test_release_weight_is_exact_for_the_longest_signatures():
    """r with its top bit set (33 DER bytes), s = q/2 (32 bytes): 71 bytes of DER, the
    longest a low-s signature has; a high s, which would make 72, is refused."""
    longest = (Q - 1, HALF_Q)
    assert len(_der(*longest)) == 71
    for n in (1, 2, 3, 252, 253):
        coins = [_coin(i, 10_000, key=i % 3) for i in range(n)]
        payouts = [Payout(P2PKH_OUT, 5_000), Payout(CHANGE_OUT, 1_000)]
        unsigned = unsigned_release(coins, payouts)
        signed = signed_release(unsigned, [longest] * n, [PUBS[i % 3] for i in range(n)])
        scripts = [p.script for p in payouts]
        assert _weight(signed) == release_weight(n, scripts)
        assert release_vsize(n, scripts) == -(-_weight(signed) // 4)
        assert _weight(unsigned) == 4 * len(unsigned)
    with pytest.raises(BtcTxError, match="high-s"):
        signed_release(unsigned, [(Q - 1, HALF_Q + 1)] * n, [PUBS[i % 3] for i in range(n)])


def test_release_vsize_by_hand():
    # 1 P2WPKH in, 1 P2WPKH out: base 82 bytes, witness 2 + 108: weight 438, 109.5 vbytes
    assert release_weight(1, [CHANGE_OUT]) == 438
    assert release_vsize(1, [CHANGE_OUT]) == 110
    # each more input: 41 · 4 + 108 = 272 weight units; each more P2TR output 43 · 4
    assert release_weight(2, [CHANGE_OUT]) == 438 + 272
    assert release_weight(1, [CHANGE_OUT, P2TR_OUT]) == 438 + 172
    for bad in ((0, [CHANGE_OUT]), (1, [])):
        with pytest.raises(BtcTxError):
            release_vsize(*bad)


P2SH_OUT = b"\xa9\x14" + bytes(20) + b"\x87"


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 6),
    outputs=st.lists(
        st.sampled_from([P2PKH_OUT, P2TR_OUT, CHANGE_OUT, P2SH_OUT]), min_size=1, max_size=4
    ),
    scalars=st.lists(
        st.tuples(st.integers(1, Q - 1), st.integers(1, HALF_Q)), min_size=6, max_size=6
    ),
)
def test_release_vsize_bounds_every_signature_size(n, outputs, scalars):
    coins = [_coin(i, 50_000, key=i % 3) for i in range(n)]
    unsigned = unsigned_release(coins, [Payout(s, 1_000) for s in outputs])
    signed = signed_release(unsigned, scalars[:n], [PUBS[i % 3] for i in range(n)])
    assert _weight(signed) <= release_weight(n, outputs)
    assert _vsize(signed) <= release_vsize(n, outputs)


def test_a_locktime_above_2_31_is_signed_and_verified():
    """python-bitcoinlib packs nLockTime as a signed int32 into the digest: the digest of
    a locktime ≥ 2³¹ must still be Core's."""
    unsigned, signed, _, _ = _release(locktime=0xFFFFFFFE)
    assert CTransaction.deserialize(unsigned).nLockTime == 0xFFFFFFFE
    verify_spends(signed, COINS)


# -- tampering ---------------------------------------------------------------------------------


@pytest.mark.parametrize("index", [0, 1, 2])
def test_a_signature_over_another_inputs_digest_is_rejected(index):
    unsigned, _, digests, _ = _release()
    sigs = [_sign(KEYS[i], digests[i]) for i in range(3)]
    sigs[index] = _sign(KEYS[index], digests[(index + 1) % 3])
    bad = signed_release(unsigned, sigs, PUBS)
    with pytest.raises(ScriptRejected) as caught:
        verify_spends(bad, COINS)
    assert (caught.value.index, caught.value.by_kernel) == (index, True)
    assert REJECTED in caught.value.reason and "BIP-143 digest" in caught.value.reason
    assert str(caught.value).startswith(f"input {index}: ")


@pytest.mark.parametrize("index", [0, 1, 2])
def test_a_wrong_amount_in_a_coin_is_rejected(index):
    _, signed, _, _ = _release()
    coins = list(COINS)
    c = coins[index]
    coins[index] = Coin(c.txid, c.vout, c.value + 1, c.key_hash)
    with pytest.raises(ScriptRejected) as caught:
        verify_spends(signed, coins)
    assert (caught.value.index, caught.value.by_kernel) == (index, True)


@pytest.mark.parametrize("index", [0, 1, 2])
@pytest.mark.parametrize("offset", [6, 20, -3])  # inside r, inside r, inside s
def test_a_flipped_byte_in_a_signature_is_rejected(index, offset):
    _, signed, _, _ = _release()
    sig, key = _witnesses(signed)[index]
    broken = bytearray(sig)
    broken[offset] ^= 0x01
    bad = _with_witness(signed, index, [bytes(broken), key])
    with pytest.raises(ScriptRejected) as caught:
        verify_spends(bad, COINS)
    assert (caught.value.index, caught.value.by_kernel) == (index, True)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_a_high_s_signature_is_rejected_by_the_standardness_check(index):
    """Valid by consensus (the kernel accepts it): only the LOW_S rule refuses it."""
    _, signed, _, _ = _release()
    sig, key = _witnesses(signed)[index]
    r, s = decode_dss_signature(sig[:-1])
    bad = _with_witness(signed, index, [_der(r, Q - s) + b"\x01", key])
    assert first_script_failure(bad, [(c.value, c.script) for c in COINS]) is None
    with pytest.raises(ScriptRejected) as caught:
        verify_spends(bad, COINS)
    assert (caught.value.index, caught.value.by_kernel) == (index, False)
    assert "high-s" in caught.value.reason


def test_other_broken_witnesses_name_their_input():
    unsigned, signed, digests, _ = _release()
    # keys swapped between inputs 1 and 2
    sigs = [_sign(KEYS[i], digests[i]) for i in range(3)]
    bad = signed_release(unsigned, sigs, [PUBS[0], PUBS[2], PUBS[1]])
    with pytest.raises(ScriptRejected, match=r"input 1: .*does not hash to the coin's key hash"):
        verify_spends(bad, COINS)
    # not signed at all
    with pytest.raises(ScriptRejected, match=r"input 0: .*no witness"):
        verify_spends(unsigned, COINS)
    # the key of another coin in the witness: the kernel refuses it, we say why
    bad = _with_witness(signed, 2, [_witnesses(signed)[2][0], PUBS[0]])
    with pytest.raises(ScriptRejected, match=r"input 2: .*does not hash") as caught:
        verify_spends(bad, COINS)
    assert caught.value.by_kernel


def test_what_consensus_allows_and_a_release_does_not():
    """Spends the kernel accepts (it checks consensus only) that relay policy, and so
    verify_spends, refuse: an uncompressed key, a hash type other than SIGHASH_ALL."""
    unsigned, signed, _, _ = _release()
    # a coin of the uncompressed form of key 2 (segwit consensus accepts one; policy not)
    uncompressed = KEYS[2].public_key.format(compressed=False)
    coins = [*COINS[:2], Coin(COINS[2].txid, COINS[2].vout, COINS[2].value, _hash160(uncompressed))]
    sig = _der(*_sign(KEYS[2], sighashes(unsigned, coins)[2])) + b"\x01"
    bad = _with_witness(signed, 2, [sig, uncompressed])
    assert first_script_failure(bad, [(c.value, c.script) for c in coins]) is None
    with pytest.raises(ScriptRejected, match="input 2: public key is not compressed") as caught:
        verify_spends(bad, coins)
    assert not caught.value.by_kernel
    # SIGHASH_NONE over its own digest
    code = CScript(b"\x76\xa9\x14" + COINS[0].key_hash + b"\x88\xac")
    none_digest = bytes(SignatureHash(code, CTransaction.deserialize(unsigned), 0, SIGHASH_NONE,
                                      COINS[0].value, SIGVERSION_WITNESS_V0))  # fmt: skip
    bad = _with_witness(signed, 0, [_der(*_sign(KEYS[0], none_digest)) + b"\x02", PUBS[0]])
    assert first_script_failure(bad, [(c.value, c.script) for c in COINS]) is None
    with pytest.raises(ScriptRejected, match="input 0: sighash type 02 is not SIGHASH_ALL"):
        verify_spends(bad, COINS)


def test_verify_spends_refuses_coins_that_are_not_the_inputs():
    _, signed, _, _ = _release()
    with pytest.raises(BtcTxError, match="coin 0 is not the output input 0 spends"):
        verify_spends(signed, [COINS[1], COINS[0], COINS[2]])
    with pytest.raises(BtcTxError, match="2 coins for 3 inputs"):
        verify_spends(signed, COINS[:2])
    with pytest.raises(BtcTxError, match="2 coins for 3 inputs"):
        sighashes(signed, COINS[:2])


# -- determinism ------------------------------------------------------------------------------


def test_the_same_release_twice_is_byte_identical():
    first = _release()
    coins = [Coin(bytes(c.txid), c.vout, c.value, bytes(c.key_hash)) for c in COINS]
    second = _release(coins=coins)
    assert first == second
    unsigned, signed, _, _ = first
    assert txid(unsigned) == txid(signed) == txid(second[1])
    assert txid(signed) == bytes(CTransaction.deserialize(signed).GetTxid())
    assert txid(signed) == bytes(pbk.Transaction(signed).txid)
    # the wtxid (with witnesses) is not the txid
    assert hashlib.sha256(hashlib.sha256(signed).digest()).digest() != txid(signed)
    # inputs and outputs stay in the order given
    reordered = _release(coins=[COINS[2], COINS[0], COINS[1]])
    assert reordered[0] != unsigned and txid(reordered[0]) != txid(unsigned)


# -- the regtest service takes it --------------------------------------------------------------


@pytest.fixture
def node() -> Iterator[RegtestNode]:
    node = RegtestNode(Settings())
    try:
        yield node
    finally:
        node.close()


def test_the_regtest_mempool_accepts_a_release_and_a_block_mines_it(node):
    """Core's relay policy as the regtest service implements it: standardness, dust,
    BIP-125, scripts by the kernel and the policy flags; then the block connects."""
    for pub in PUBS:
        node.generate(1, b"\x00\x14" + _hash160(pub))
    node.generate(100, P2PKH_OUT)
    chain = node.chain
    coins = []
    for height in (1, 2, 3):
        cb = chain.block(chain.active[height]).vtx[0]
        coins.append(
            Coin(bytes(cb.GetTxid()), 0, int(cb.vout[0].nValue), bytes(cb.vout[0].scriptPubKey)[2:])
        )
    _, signed, _, _ = _release(rate=2, coins=coins)
    methods = Methods(node)
    answer = methods.call("sendrawtransaction", [signed.hex()])
    assert answer == txid(signed)[::-1].hex()
    entry = methods.call("getmempoolentry", [answer])
    assert entry["bip125-replaceable"] is True
    assert entry["vsize"] == _vsize(signed)
    node.generate(1, P2PKH_OUT)
    assert methods.call("getrawmempool", []) == []
    assert txid(signed) in [bytes(t.GetTxid()) for t in chain.block(chain.active[-1]).vtx]


# -- addresses ---------------------------------------------------------------------------------


@contextmanager
def _bitcoinlib_network(name: str) -> Iterator[None]:
    """python-bitcoinlib's global chain selection, put back afterwards."""
    saved = bitcoin.params, bitcoin.core.coreparams
    bitcoin.SelectParams(name)
    try:
        yield
    finally:
        bitcoin.params, bitcoin.core.coreparams = saved


WITNESS_SCRIPT = CScript([PUBS[0], 0xAC])  # <key> OP_CHECKSIG


def _bitcoinlib_addresses() -> dict[str, tuple[str, bytes]]:
    """Each base58 and segwit v0 type, made by python-bitcoinlib: (address, scriptPubKey)."""
    made = {
        "p2pkh": P2PKHBitcoinAddress.from_pubkey(PUBS[1]),
        "p2sh": P2SHBitcoinAddress.from_redeemScript(CScript(CHANGE_OUT)),  # P2SH-P2WPKH
        "p2wpkh": P2WPKHBitcoinAddress.from_scriptPubKey(CScript(b"\x00\x14" + _hash160(PUBS[2]))),
        "p2wsh": P2WSHBitcoinAddress.from_scriptPubKey(
            CScript(b"\x00\x20" + hashlib.sha256(WITNESS_SCRIPT).digest())
        ),
    }
    return {kind: (str(a), bytes(a.to_scriptPubKey())) for kind, a in made.items()}


@pytest.mark.parametrize("network", ["mainnet", "regtest"])
def test_addresses_made_by_python_bitcoinlib(network):
    with _bitcoinlib_network(network):
        made = _bitcoinlib_addresses()
        for kind, (address, script) in made.items():
            assert address_script(address, network) == script, kind
            assert btctx.output_type(script) == kind
            assert str(CBitcoinAddress.from_scriptPubKey(CScript(script))) == address
    # the node's own P2WPKH deposit encoding (the `bech32` package) agrees both ways
    p2wpkh_address, p2wpkh_script = made["p2wpkh"]
    assert btc_p2wpkh(Point.from_bytes(PUBS[2]), network) == p2wpkh_address
    assert address_script(p2wpkh_address.upper(), network) == p2wpkh_script
    # and each is refused on the other network
    other = "regtest" if network == "mainnet" else "mainnet"
    for address, _ in made.values():
        with pytest.raises(BtcTxError, match=f"not {other}"):
            address_script(address, other)


def test_p2tr_addresses():
    # BIP-350: the x coordinate of G, which is private key 1's x-only key
    x_only = coincurve.PrivateKey((1).to_bytes(32, "big")).public_key.format()[1:]
    script = b"\x51\x20" + x_only
    assert (
        address_script("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0", "mainnet")
        == script
    )
    # a regtest one, by the regtest service's encoder, and back
    address = regtest_addresses.encode_segwit(1, P2TR_OUT[2:])
    assert address.startswith("bcrt1p")
    assert address_script(address, "regtest") == P2TR_OUT
    assert regtest_addresses.from_script(P2TR_OUT) == address
    for network in ("mainnet", "testnet", "signet"):
        with pytest.raises(BtcTxError, match="a regtest address"):
            address_script(address, network)


# BIP-350, "Test vectors for v0-v16 native segregated witness addresses": the valid ones,
# with the scriptPubKey; None where the address is valid but no release pays to its type
BIP350_VALID = [
    ("BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", "0014751e76e8199196d454941c45d1b3a323f1433bd6"),
    ("tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7",
     "00201863143c14c5166804bd19203356da136c985678cd4d27a1b8c6329604903262"),
    ("bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kw508d6qejxtdg4y5r3zarvary0c5xw7kt5nd6y", None),
    ("BC1SW50QGDZ25J", None),
    ("bc1zw508d6qejxtdg4y5r3zarvaryvaxxpcs", None),
    ("tb1qqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesrxh6hy",
     "0020000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433"),
    ("tb1pqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesf3hn0c",
     "5120000000c4a5cad46221b2a187905e5266362b99d5e91c6ce24d165dab93e86433"),
    ("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
     "512079be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"),
]  # fmt: skip

# ... and the invalid ones, with a word of the refusal each must give
BIP350_INVALID = [
    ("tc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq5zuyut", "Bitcoin prefix"),
    ("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqh2y7hd", "bech32 checksum"),
    ("tb1z0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqglt7rf", "bech32 checksum"),
    ("BC1S0XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ54WELL", "bech32 checksum"),
    ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh", "bech32m checksum"),
    ("tb1q0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq24jc47", "bech32m checksum"),
    ("bc1p38j9r5y49hruaue7wxjce0updqjuyyx0kh56v8s25huc6995vvpql3jow4", "alphabet"),
    ("BC130XLXVLHEMJA6C4DQV22UAPCTQUPFHLXM9H8Z3K2E72Q4K9HCZ7VQ7ZWS8R", "witness version 17"),
    ("bc1pw5dgrnzv", "program of 1 bytes"),
    ("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v8n0nx0muaewav253zgeav", "41 bytes"),
    ("BC1QR508D6QEJXTDG4Y5R3ZARVARYV98GJ9P", "v0 program of 16 bytes"),
    ("tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vq47Zagq", "mixed-case"),
    ("bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7v07qwwzcrf", "padding"),
    ("tb1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vpggkg4j", "padding"),
    ("bc1gmk9yu", "too short"),
]


def _network_of(address: str) -> str:
    return "mainnet" if address.lower().startswith("bc1") else "testnet"


@pytest.mark.parametrize(("address", "script"), BIP350_VALID)
def test_bip350_valid_addresses(address, script):
    if script is None:
        with pytest.raises(BtcTxError, match="not an output type a release pays to"):
            address_script(address, _network_of(address))
    else:
        assert address_script(address, _network_of(address)).hex() == script
        if _network_of(address) == "testnet":
            assert address_script(address, "signet").hex() == script
        assert is_standard_output(bytes.fromhex(script))


@pytest.mark.parametrize(("address", "reason"), BIP350_INVALID)
def test_bip350_invalid_addresses(address, reason):
    for network in ("mainnet", "testnet", "regtest"):
        with pytest.raises(BtcTxError) as caught:
            address_script(address, network)
        if network == _network_of(address) or reason in ("Bitcoin prefix", "mixed-case"):
            assert reason in str(caught.value)


def test_addresses_built_wrong_by_hand_are_refused():
    program = P2TR_OUT[2:]
    # v1 under the bech32 (BIP-173) checksum, by the `bech32` package: BIP-350 says bech32m
    v1_bech32 = bech32.bech32_encode("bc", [1, *bech32.convertbits(program, 8, 5)])
    assert bech32.decode("bc", v1_bech32) == (1, list(program))  # valid to a BIP-173 decoder
    with pytest.raises(BtcTxError, match=r"witness v1 address with a bech32 checksum"):
        address_script(v1_bech32, "mainnet")
    # v0 with a 21-byte program
    v0_21 = bech32.bech32_encode("bcrt", [0, *bech32.convertbits(bytes(range(21)), 8, 5)])
    with pytest.raises(BtcTxError, match="v0 program of 21 bytes"):
        address_script(v0_21, "regtest")
    # bad checksums: one character changed, bech32 and base58
    good = btc_p2wpkh(Point.from_bytes(PUBS[0]), "regtest")
    flipped = good[:-1] + ("q" if good[-1] != "q" else "p")
    with pytest.raises(BtcTxError, match="checksum does not match"):
        address_script(flipped, "regtest")
    with _bitcoinlib_network("mainnet"):
        p2pkh = str(P2PKHBitcoinAddress.from_pubkey(PUBS[0]))
    assert address_script(p2pkh, "mainnet") == b"\x76\xa9\x14" + _hash160(PUBS[0]) + b"\x88\xac"
    broken = p2pkh[:-1] + ("2" if p2pkh[-1] != "2" else "3")
    with pytest.raises(BtcTxError, match="base58check checksum does not match"):
        address_script(broken, "mainnet")
    # mixed case
    with pytest.raises(BtcTxError, match="mixed-case"):
        address_script(good[:6] + good[6:].upper(), "regtest")
    # a base58 payload that is not an address: a WIF private key (version 0x80, 33 bytes)
    wif = bitcoin.base58.encode(
        b"\x80" + bytes(32) + b"\x01" + bitcoin.core.Hash(b"\x80" + bytes(32) + b"\x01")[:4]
    )
    with pytest.raises(BtcTxError, match="payload of 34 bytes"):
        address_script(wif, "mainnet")
    wrong_version = bitcoin.base58.encode(
        b"\x30" + bytes(20) + bitcoin.core.Hash(b"\x30" + bytes(20))[:4]
    )
    with pytest.raises(BtcTxError, match="version byte 48"):
        address_script(wrong_version, "mainnet")
    # testnet base58 on mainnet; a testnet bech32 on regtest; unknown network; junk
    with _bitcoinlib_network("testnet"):
        tpkh = str(P2PKHBitcoinAddress.from_pubkey(PUBS[0]))
    with pytest.raises(BtcTxError, match=r"testnet/signet/regtest base58 address.*not mainnet"):
        address_script(tpkh, "mainnet")
    assert address_script(tpkh, "signet") == address_script(tpkh, "regtest")
    with pytest.raises(BtcTxError, match=r"testnet/signet address \(prefix tb1\), not regtest"):
        address_script(btc_p2wpkh(Point.from_bytes(PUBS[0]), "testnet"), "regtest")
    with pytest.raises(BtcTxError, match="unknown Bitcoin network"):
        address_script(good, "bitcoin")
    no_separator = "bcqw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
    for junk in ("", "bc1", "bcrt1q", "0xdeadbeef", "bc1qü", "1" * 40, "bcq", no_separator):
        with pytest.raises(BtcTxError):
            address_script(junk, "mainnet")


# -- templates and dust -----------------------------------------------------------------------

TEMPLATES = {
    "p2pkh": (b"\x76\xa9\x14" + bytes(20) + b"\x88\xac", 546, "pubkeyhash"),
    "p2sh": (b"\xa9\x14" + bytes(20) + b"\x87", 540, "scripthash"),
    "p2wpkh": (b"\x00\x14" + bytes(20), 294, "witness_v0_keyhash"),
    "p2wsh": (b"\x00\x20" + bytes(32), 330, "witness_v0_scripthash"),
    "p2tr": (b"\x51\x20" + bytes(32), 330, "witness_v1_taproot"),
}
NON_STANDARD = {
    "empty": b"",
    "op_return": b"\x6a\x04abcd",
    "bare multisig": b"\x51\x21" + PUBS[0] + b"\x51\xae",
    "p2pk": b"\x21" + PUBS[0] + b"\xac",
    "anchor (P2A)": b"\x51\x02\x4e\x73",
    "witness v2": b"\x52\x20" + bytes(32),
    "v0 of 21 bytes": b"\x00\x15" + bytes(21),
    "p2wpkh with a trailing byte": b"\x00\x14" + bytes(21),
    "p2pkh without OP_CHECKSIG": b"\x76\xa9\x14" + bytes(20) + b"\x88",
}


@pytest.mark.parametrize("kind", TEMPLATES)
def test_dust_and_templates_agree_with_the_regtest_policy(kind):
    script, dust, core_type = TEMPLATES[kind]
    assert is_standard_output(script) and btctx.output_type(script) == kind
    assert dust_limit(script) == dust == regtest_scripts.dust_threshold(script)
    assert regtest_scripts.classify(script) == core_type
    assert regtest_policy.is_standard_output(script)
    # the dust limit is where unsigned_release starts accepting the output
    coin = [_coin(0, 100_000)]
    assert unsigned_release(coin, [Payout(script, dust)])
    with pytest.raises(BtcTxError, match=f"output 0 \\({kind}\\) of {dust - 1} sat is dust"):
        unsigned_release(coin, [Payout(script, dust - 1)])


@pytest.mark.parametrize("name", NON_STANDARD)
def test_non_standard_outputs_are_refused(name):
    script = NON_STANDARD[name]
    assert not is_standard_output(script)
    with pytest.raises(BtcTxError, match="output 1 is not P2PKH, P2SH, P2WPKH, P2WSH or P2TR"):
        unsigned_release([_coin(0, 100_000)], [Payout(CHANGE_OUT, 1_000), Payout(script, 50_000)])


def test_dust_limit_of_other_scripts_follows_core():
    assert dust_limit(b"\x6a\x04abcd") == 0  # unspendable
    assert dust_limit(b"\x51\x02\x4e\x73") == regtest_scripts.dust_threshold(b"\x51\x02\x4e\x73")
    p2pk = NON_STANDARD["p2pk"]
    assert dust_limit(p2pk) == regtest_scripts.dust_threshold(p2pk) == 3 * (8 + 1 + 35 + 148)


# -- refusals ----------------------------------------------------------------------------------


def test_unsigned_release_refusals():
    coin = _coin(0, 100_000)
    pay = Payout(CHANGE_OUT, 50_000)
    with pytest.raises(BtcTxError, match="at least one coin"):
        unsigned_release([], [pay])
    with pytest.raises(BtcTxError, match="at least one output"):
        unsigned_release([coin], [])
    with pytest.raises(BtcTxError, match=r"input 1 spends .* twice"):
        unsigned_release([coin, Coin(coin.txid, coin.vout, 5, bytes(20))], [pay])
    with pytest.raises(BtcTxError, match="outputs 100001 sat exceed inputs 100000 sat"):
        unsigned_release([coin], [Payout(CHANGE_OUT, 100_001)])
    assert unsigned_release([coin], [Payout(CHANGE_OUT, 100_000)])  # a zero fee is the caller's
    rich = [Coin(bytes([i]) * 32, 0, MAX_MONEY, bytes(20)) for i in range(2)]
    with pytest.raises(BtcTxError, match="more than 21,000,000 BTC"):
        unsigned_release(rich, [Payout(CHANGE_OUT, MAX_MONEY), Payout(CHANGE_OUT, 1_000)])
    with pytest.raises(BtcTxError, match="more than 21,000,000 BTC"):
        unsigned_release(rich, [pay])
    for locktime in (-1, 1 << 32):
        with pytest.raises(BtcTxError, match="locktime"):
            unsigned_release([coin], [pay], locktime=locktime)
    # 272 weight units an input, 174 for the rest: 1,469 inputs fit in 400,000, 1,470 do not
    many = [_coin(i, 1_000, key=i % 3) for i in range(1_470)]
    assert release_weight(1_469, [CHANGE_OUT]) == 399_742
    with pytest.raises(BtcTxError, match="signed weight 400014 above the standard 400000"):
        unsigned_release(many, [pay])
    assert unsigned_release(many[:1_469], [pay])


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ((bytes(31), 0, 1, bytes(20)), "txid is 32 bytes"),
        ((bytes(32), -1, 1, bytes(20)), "32-bit"),
        ((bytes(32), 1 << 32, 1, bytes(20)), "32-bit"),
        ((bytes(32), 0, -1, bytes(20)), "outside"),
        ((bytes(32), 0, MAX_MONEY + 1, bytes(20)), "outside"),
        ((bytes(32), 0, True, bytes(20)), "integer"),
        ((bytes(32), 0, 1, bytes(21)), "key hash is 20 bytes"),
    ],
)
def test_coin_refusals(fields, match):
    with pytest.raises(BtcTxError, match=match):
        Coin(*fields)


def test_payout_refusals():
    for value in (-1, MAX_MONEY + 1):
        with pytest.raises(BtcTxError, match="outside"):
            Payout(CHANGE_OUT, value)
    with pytest.raises(BtcTxError, match="bytes"):
        Payout(CHANGE_OUT.hex(), 1_000)  # type: ignore[arg-type]


def test_signed_release_refusals():
    unsigned, signed, digests, _ = _release()
    sigs = [_sign(KEYS[i], digests[i]) for i in range(3)]
    r, s = sigs[1]
    with pytest.raises(BtcTxError, match="input 1: high-s signature"):
        signed_release(unsigned, [sigs[0], (r, Q - s), sigs[2]], PUBS)
    for bad in ((0, s), (r, 0), (Q, s), (r, Q)):
        with pytest.raises(BtcTxError, match="input 1: r or s out of range"):
            signed_release(unsigned, [sigs[0], bad, sigs[2]], PUBS)
    uncompressed = KEYS[2].public_key.format(compressed=False)
    with pytest.raises(BtcTxError, match="input 2: the public key is not 33 bytes compressed"):
        signed_release(unsigned, sigs, [PUBS[0], PUBS[1], uncompressed])
    with pytest.raises(BtcTxError, match="input 2: the public key is not 33 bytes compressed"):
        signed_release(unsigned, sigs, [PUBS[0], PUBS[1], b"\x04" + PUBS[2][1:]])
    off_curve = next(
        k for x in range(1, 100) if not _on_curve(k := b"\x02" + x.to_bytes(32, "big"))
    )
    with pytest.raises(BtcTxError, match="input 0: the public key is not a curve point"):
        signed_release(unsigned, sigs, [off_curve, PUBS[1], PUBS[2]])
    with pytest.raises(BtcTxError, match="2 signatures and 3 public keys for 3 inputs"):
        signed_release(unsigned, sigs[:2], PUBS)
    with pytest.raises(BtcTxError, match="3 signatures and 2 public keys for 3 inputs"):
        signed_release(unsigned, sigs, PUBS[:2])
    with pytest.raises(BtcTxError, match="already has witnesses"):
        signed_release(signed, sigs, PUBS)


def _on_curve(key: bytes) -> bool:
    try:
        coincurve.PublicKey(key)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"", "truncated"),
        (bytes.fromhex("02000000"), "truncated"),
        (bytes.fromhex("0200000000"), "without inputs"),
        (BIP143_UNSIGNED + b"\x00", "bytes after the end"),
        (BIP143_UNSIGNED[:-1], "truncated"),
        (BIP143_UNSIGNED[:4] + b"\xfd\x02\x00" + BIP143_UNSIGNED[5:], "non-canonical"),
    ],
)
def test_malformed_transactions_are_refused(raw, match):
    with pytest.raises(BtcTxError, match=match):
        txid(raw)


def test_a_superfluous_witness_marker_is_refused():
    # marker and flag, then every input with an empty witness: Core refuses it too
    body = BIP143_UNSIGNED[4:-4]
    raw = BIP143_UNSIGNED[:4] + b"\x00\x01" + body + b"\x00\x00" + BIP143_UNSIGNED[-4:]
    with pytest.raises(BtcTxError, match="superfluous"):
        txid(raw)
