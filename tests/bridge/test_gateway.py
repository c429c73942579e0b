"""The gateway on a real EVM (anvil): mints authorised by a secp256k1 key over the bridge's
sigHash, every refusal the contract makes, authority rotation, burns.

One anvil and one deployment serve the module; each test runs inside an evm_snapshot that
is reverted after it, so every test starts from the freshly deployed gateway.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import pytest
from eth_abi.abi import encode as abi_encode
from eth_keys import keys as eth_keys
from eth_typing import ChecksumAddress
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError
from web3.logs import DISCARD

from tssnode.bridge.contracts import load
from tssnode.bridge.hashes import n_hash, p_hash, s_hash, sig_hash
from tssnode.crypto.digests import keccak256
from tssnode.crypto.group import Q
from tssnode.testing.anvil import running_anvil
from tssnode.testing.evm import (
    DEFAULT_MINIMUM_BURN,
    KeyAuthority,
    deploy_gateway,
    rsv,
    transact,
)

CHAIN_ID = 31337
AUTHORITY = KeyAuthority(bytes.fromhex("a1" * 32))
OTHER_KEY = KeyAuthority(bytes.fromhex("b2" * 32))
#: a mint's gas, far above the ~100k expected: catches a gas blow-up, not a benchmark
MINT_GAS_CEILING = 200_000


@dataclass(frozen=True)
class Chain:
    w3: Web3
    gateway: Contract
    token: Contract
    deployer: ChecksumAddress
    relayer: ChecksumAddress


@pytest.fixture(scope="module")
def chain() -> Iterator[Chain]:
    with running_anvil(chain_id=CHAIN_ID, accounts=2) as anvil:
        w3 = Web3(Web3.HTTPProvider(anvil.url))
        deployer, relayer = w3.eth.accounts
        gateway, token = deploy_gateway(w3, deployer, AUTHORITY.address)
        yield Chain(w3, gateway, token, deployer, relayer)


@pytest.fixture(autouse=True)
def fresh(chain: Chain) -> Iterator[None]:
    """Each test's chain changes are undone after it (anvil's snapshot is single-use)."""
    snapshot = chain.w3.provider.make_request("evm_snapshot", [])["result"]
    yield
    assert chain.w3.provider.make_request("evm_revert", [snapshot])["result"] is True


def _address(rng: random.Random) -> ChecksumAddress:
    return Web3.to_checksum_address(rng.randbytes(20))


def _error_data(abi: list[dict], name: str, *args: object) -> str:
    """The revert data of custom error `name(args)`: its selector, then its ABI-encoded
    arguments (all of them given, or none: then only the selector is compared)."""
    (entry,) = [e for e in abi if e["type"] == "error" and e["name"] == name]
    types = [i["type"] for i in entry["inputs"]]
    selector = keccak256(f"{name}({','.join(types)})".encode())[:4]
    return "0x" + (selector + (abi_encode(types, list(args)) if args else b"")).hex()


@contextmanager
def reverts(abi: list[dict], name: str, *args: object) -> Iterator[None]:
    """The block must revert with the custom error `name` (and these arguments)."""
    with pytest.raises(ContractCustomError) as info:
        yield
    expected = _error_data(abi, name, *args)
    assert isinstance(info.value.data, str)
    got = info.value.data if args else info.value.data[: len(expected)]
    assert got == expected, f"reverted with {info.value.data}, not {name}{args}"


GATEWAY_ABI = load("BridgeGateway")["abi"]
TOKEN_ABI = load("WrappedBTC")["abi"]


@dataclass(frozen=True)
class Mint:
    """One mint's fields, as the bridge would have them for a deposit output."""

    p: bytes
    amount: int
    to: ChecksumAddress
    n: bytes

    @classmethod
    def random(cls, rng: random.Random, amount: int = 150_000) -> Mint:
        nonce, txid = rng.randbytes(32), rng.randbytes(32)
        return cls(p_hash(rng.randbytes(8)), amount, _address(rng), n_hash(nonce, txid, 1))

    def digest(self, chain_id: int, gateway: str) -> bytes:
        """sigHash by tssnode.bridge.hashes, independently of the contract."""
        to, gw = bytes.fromhex(self.to[2:]), bytes.fromhex(gateway[2:])
        return sig_hash(self.p, self.amount, s_hash("Ethereum"), to, self.n, chain_id, gw)

    def send(self, chain: Chain, sig: bytes, gateway: Contract | None = None) -> dict:
        gw = gateway or chain.gateway
        call = gw.functions.mint(self.p, self.amount, self.to, self.n, sig)
        return dict(transact(chain.w3, call, chain.relayer))


def _signed(chain: Chain, mint: Mint, key: KeyAuthority = AUTHORITY) -> bytes:
    return key.sign(mint.digest(CHAIN_ID, chain.gateway.address))


def _split(sig: bytes) -> tuple[int, int, int]:
    """(r, s, v) of a 65-byte r ‖ s ‖ v signature."""
    return int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big"), sig[64]


def test_rsv_makes_s_low_and_flips_the_recovery_id(rng):
    """coincurve's signatures are low-s already; a threshold signature may not be."""
    sig = AUTHORITY.sign(rng.randbytes(32))
    r, s, v = _split(sig)
    assert rsv(r, s, v - 27) == sig
    assert rsv(r, Q - s, (v - 27) ^ 1) == sig  # the high-s twin, normalised back
    with pytest.raises(ValueError, match="recovery id"):
        rsv(r, s, 2)


def test_the_contract_computes_the_bridges_hashes(chain, rng):
    assert chain.gateway.functions.sHash().call() == s_hash("Ethereum")
    for _ in range(5):
        mint = Mint.random(rng, amount=rng.randrange(2**256))
        onchain = chain.gateway.functions.hashForSignature(
            mint.p, mint.amount, mint.to, mint.n
        ).call()
        assert onchain == mint.digest(CHAIN_ID, chain.gateway.address)


def test_a_signed_mint_mints_to_the_recipient(chain, rng, record_property):
    mint = Mint.random(rng)
    digest = mint.digest(CHAIN_ID, chain.gateway.address)
    sig = _signed(chain, mint)

    # the signature is checked by another implementation: eth-keys recovers the authority
    r, s, v = _split(sig)
    assert v in (27, 28) and s <= Q // 2
    recovered = eth_keys.Signature(vrs=(v - 27, r, s)).recover_public_key_from_msg_hash(digest)
    assert recovered.to_checksum_address() == AUTHORITY.address

    receipt = mint.send(chain, sig)
    assert chain.token.functions.balanceOf(mint.to).call() == mint.amount
    # `to` gets it, not the relayer who sent the transaction
    assert chain.token.functions.balanceOf(chain.relayer).call() == 0
    assert chain.token.functions.totalSupply().call() == mint.amount
    (event,) = chain.gateway.events.LogMint().process_receipt(receipt, errors=DISCARD)
    assert event["args"]["to"] == mint.to
    assert event["args"]["amount"] == mint.amount
    assert event["args"]["nHash"] == mint.n
    assert event["args"]["sigHash"] == digest
    assert chain.gateway.functions.nHashSpent(mint.n).call() is True
    assert chain.gateway.functions.sigHashSpent(digest).call() is True

    gas = receipt["gasUsed"]
    print(f"\nBridgeGateway.mint gas used: {gas}")
    record_property("mint_gas", gas)
    assert gas < MINT_GAS_CEILING


def test_a_mint_is_not_replayed(chain, rng):
    mint = Mint.random(rng)
    sig = _signed(chain, mint)
    mint.send(chain, sig)
    with reverts(GATEWAY_ABI, "NHashSpent", mint.n):
        mint.send(chain, sig)
    # a second authorisation for the same deposit output, with another amount and recipient
    again = replace(mint, amount=mint.amount + 1, to=_address(rng))
    with reverts(GATEWAY_ABI, "NHashSpent", mint.n):
        again.send(chain, _signed(chain, again))
    assert chain.token.functions.totalSupply().call() == mint.amount


#: bits of r ‖ s counted from the most significant: r's top bit, one inside r, s's top bit, s's last
@pytest.mark.parametrize("bit", [0, 200, 256, 511], ids=["r-top", "r-200", "s-top", "s-last"])
def test_a_signature_with_one_bit_flipped_is_refused(chain, rng, bit):
    mint = Mint.random(rng)
    sig = bytearray(_signed(chain, mint))
    sig[bit // 8] ^= 0x80 >> (bit % 8)
    # a changed r recovers another key or none; so does a changed s, unless the change
    # makes it high (setting a low s's top bit always does), refused before recovery
    expected = (
        {"ECDSAInvalidSignatureS"} if bit == 256 else {"NotAuthority", "ECDSAInvalidSignature"}
    )
    with pytest.raises(ContractCustomError) as info:
        mint.send(chain, bytes(sig))
    assert info.value.data[:10] in {_error_data(GATEWAY_ABI, name) for name in expected}
    assert chain.token.functions.totalSupply().call() == 0
    assert chain.gateway.functions.nHashSpent(mint.n).call() is False


def test_a_signature_for_other_fields_is_refused(chain, rng):
    mint = Mint.random(rng)
    sig = _signed(chain, mint)
    for changed in (
        replace(mint, amount=mint.amount + 1),
        replace(mint, to=_address(rng)),
        replace(mint, p=p_hash(b"another payload")),
        replace(mint, n=n_hash(bytes(32), bytes(32), 0)),
    ):
        with pytest.raises(ContractCustomError) as info:
            changed.send(chain, sig)
        # a valid signature, of a digest the contract did not compute: another signer
        assert info.value.data[:10] == _error_data(GATEWAY_ABI, "NotAuthority")
    mint.send(chain, sig)  # the signature itself was good
    assert chain.token.functions.balanceOf(mint.to).call() == mint.amount


def test_a_signature_made_for_another_chain_or_gateway_is_refused(chain, rng):
    """RenVM's digest bound neither: one authorisation minted on every deployment."""
    mint = Mint.random(rng)
    for chain_id, gateway in ((1, chain.gateway.address), (CHAIN_ID, _address(rng))):
        sig = AUTHORITY.sign(mint.digest(chain_id, gateway))
        with reverts(GATEWAY_ABI, "NotAuthority"):
            mint.send(chain, sig)

    # a second deployment with the same authority and chain: each takes only its own
    second, token2 = deploy_gateway(chain.w3, chain.deployer, AUTHORITY.address)
    for_first = _signed(chain, mint)
    with reverts(GATEWAY_ABI, "NotAuthority"):
        mint.send(chain, for_first, gateway=second)
    mint.send(chain, for_first)
    mint.send(chain, AUTHORITY.sign(mint.digest(CHAIN_ID, second.address)), gateway=second)
    assert token2.functions.balanceOf(mint.to).call() == mint.amount
    assert chain.token.functions.balanceOf(mint.to).call() == mint.amount


def test_the_high_s_twin_of_a_valid_signature_is_refused(chain, rng):
    mint = Mint.random(rng)
    digest = mint.digest(CHAIN_ID, chain.gateway.address)
    r, s, v = _split(_signed(chain, mint))
    high_s, flipped = Q - s, (v - 27) ^ 1
    # it is a valid ECDSA signature of the authority (eth-keys recovers the same key) ...
    twin = eth_keys.Signature(vrs=(flipped, r, high_s))
    assert twin.recover_public_key_from_msg_hash(digest).to_checksum_address() == (
        AUTHORITY.address
    )
    # ... that the gateway refuses, as malleable
    sig = r.to_bytes(32, "big") + high_s.to_bytes(32, "big") + bytes([27 + flipped])
    with reverts(GATEWAY_ABI, "ECDSAInvalidSignatureS", high_s.to_bytes(32, "big")):
        mint.send(chain, sig)
    assert chain.gateway.functions.nHashSpent(mint.n).call() is False


def test_a_malformed_signature_is_refused(chain, rng):
    mint = Mint.random(rng)
    sig = _signed(chain, mint)
    with reverts(GATEWAY_ABI, "ECDSAInvalidSignatureLength", 64):
        mint.send(chain, sig[:64])
    with reverts(GATEWAY_ABI, "ECDSAInvalidSignature"):
        mint.send(chain, sig[:64] + bytes([sig[64] + 2]))  # v = 29 or 30


def test_deployment_refuses_a_zero_authority_or_minimum(chain):
    zero = "0x" + "00" * 20
    with reverts(GATEWAY_ABI, "ZeroAuthority"):
        deploy_gateway(chain.w3, chain.deployer, Web3.to_checksum_address(zero))
    with reverts(GATEWAY_ABI, "ZeroMinimumBurn"):
        deploy_gateway(chain.w3, chain.deployer, AUTHORITY.address, minimum_burn=0)


def test_the_token_is_the_gateways_alone(chain, rng):
    token = chain.token
    assert token.functions.gateway().call() == chain.gateway.address
    assert token.functions.decimals().call() == 8
    assert token.functions.name().call() == "Wrapped BTC (tssnode)"
    assert token.functions.symbol().call() == "tsBTC"
    for call in (
        token.functions.mint(chain.relayer, 10**8),
        token.functions.burn(chain.relayer, 0),
    ):
        with reverts(TOKEN_ABI, "NotGateway", chain.relayer):
            transact(chain.w3, call, chain.relayer)
    assert token.functions.totalSupply().call() == 0


def _rotation_digest(chain: Chain, new: ChecksumAddress, nonce: int) -> bytes:
    """The rotation digest by eth-abi, independently of the contract."""
    return keccak256(
        abi_encode(
            ["string", "address", "uint256", "uint256", "address"],
            ["tssnode.rotate", new, nonce, CHAIN_ID, chain.gateway.address],
        )
    )


def test_rotation_needs_the_current_authority_and_retires_it(chain, rng):
    gw = chain.gateway
    new = OTHER_KEY.address
    digest = _rotation_digest(chain, new, 0)
    assert gw.functions.hashForRotation(new).call() == digest

    def rotate(to: ChecksumAddress, sig: bytes) -> dict:
        return dict(transact(chain.w3, gw.functions.rotateAuthority(to, sig), chain.relayer))

    with reverts(GATEWAY_ABI, "NotAuthority", new):  # the new key cannot appoint itself
        rotate(new, OTHER_KEY.sign(digest))
    with reverts(GATEWAY_ABI, "NotAuthority"):  # signed for another new authority
        rotate(new, AUTHORITY.sign(_rotation_digest(chain, _address(rng), 0)))
    with reverts(GATEWAY_ABI, "ZeroAuthority"):
        zero = Web3.to_checksum_address("0x" + "00" * 20)
        rotate(zero, AUTHORITY.sign(_rotation_digest(chain, zero, 0)))
    assert gw.functions.mintAuthority().call() == AUTHORITY.address

    receipt = rotate(new, AUTHORITY.sign(digest))
    (event,) = gw.events.LogAuthorityRotated().process_receipt(receipt, errors=DISCARD)
    assert event["args"]["previousAuthority"] == AUTHORITY.address
    assert event["args"]["newAuthority"] == new
    assert event["args"]["rotationNonce"] == 0
    assert gw.functions.mintAuthority().call() == new
    assert gw.functions.rotationNonce().call() == 1

    # the old authority no longer mints; the new one does
    mint = Mint.random(rng)
    with reverts(GATEWAY_ABI, "NotAuthority", AUTHORITY.address):
        mint.send(chain, _signed(chain, mint, AUTHORITY))
    mint.send(chain, _signed(chain, mint, OTHER_KEY))
    assert chain.token.functions.balanceOf(mint.to).call() == mint.amount

    # the old rotation signature is spent with its nonce: rotating back needs the new key
    with reverts(GATEWAY_ABI, "NotAuthority"):
        rotate(AUTHORITY.address, AUTHORITY.sign(_rotation_digest(chain, AUTHORITY.address, 1)))
    rotate(AUTHORITY.address, OTHER_KEY.sign(_rotation_digest(chain, AUTHORITY.address, 1)))
    assert gw.functions.mintAuthority().call() == AUTHORITY.address
    with reverts(GATEWAY_ABI, "NotAuthority"):  # replaying the first rotation (nonce 0)
        rotate(new, AUTHORITY.sign(digest))
    assert gw.functions.mintAuthority().call() == AUTHORITY.address


def test_burns_enforce_the_minimum_and_log_increasing_nonces(chain, rng):
    gw, token, holder = chain.gateway, chain.token, chain.relayer
    minimum = gw.functions.minimumBurn().call()
    assert minimum == DEFAULT_MINIMUM_BURN
    mint = replace(Mint.random(rng, amount=3 * minimum), to=holder)
    mint.send(chain, _signed(chain, mint))
    btc = b"bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"

    def burn(to: bytes, amount: int) -> dict:
        return dict(transact(chain.w3, gw.functions.burn(to, amount), holder))

    with reverts(GATEWAY_ABI, "BurnTooSmall", minimum - 1, minimum):
        burn(btc, minimum - 1)
    with reverts(GATEWAY_ABI, "BadBurnAddress", 0):
        burn(b"", minimum)
    with reverts(GATEWAY_ABI, "BadBurnAddress", 91):
        burn(b"b" * 91, minimum)
    assert token.functions.balanceOf(holder).call() == 3 * minimum

    logged = []
    for to, amount in ((btc, minimum), (b"b" * 90, minimum + 1)):
        (event,) = gw.events.LogBurn().process_receipt(burn(to, amount), errors=DISCARD)
        assert event["args"]["to"] == to
        assert event["args"]["amount"] == amount
        assert event["args"]["from"] == holder
        logged.append(event["args"]["burnNonce"])
    assert logged == [0, 1]
    assert gw.functions.nextBurnNonce().call() == 2
    left = 3 * minimum - (2 * minimum + 1)
    assert token.functions.balanceOf(holder).call() == left
    assert token.functions.totalSupply().call() == left

    # more than the holder has: the token refuses (its error, not the gateway's)
    with reverts(TOKEN_ABI, "ERC20InsufficientBalance", holder, left, minimum):
        burn(btc, minimum)
