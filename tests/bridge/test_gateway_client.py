"""The gateway client the CLI mints with (`tssnode.bridge.gateway`), on a real anvil: a
signed deposit as the node's API shows it is minted once; another chain, a missing
contract, an unsigned deposit and a second mint are refused with a reason."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_account import Account
from web3 import Web3

from tssnode.bridge.gateway import Gateway, GatewayError, mint_signature
from tssnode.bridge.hashes import n_hash, p_hash, s_hash, sig_hash
from tssnode.testing.anvil import running_anvil
from tssnode.testing.evm import KeyAuthority, deploy_gateway

CHAIN_ID = 31337
AUTHORITY = KeyAuthority(bytes.fromhex("b2" * 32))
#: anvil's first dev account (its default mnemonic): a relayer paying for the mint
RELAYER = Account.from_key("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
TO = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


@pytest.fixture(scope="module")
def chain() -> Iterator[tuple[str, str]]:
    with running_anvil(chain_id=CHAIN_ID, accounts=2) as anvil:
        w3 = Web3(Web3.HTTPProvider(anvil.url))
        assert w3.eth.accounts[0] == RELAYER.address
        gateway, _ = deploy_gateway(w3, w3.eth.accounts[1], AUTHORITY.address)
        yield anvil.url, gateway.address


def _signed_deposit(gateway: str, amount: int = 49_990_000) -> dict[str, object]:
    """A deposit as `GET /bridge/deposits/{txid}:{vout}` shows it once signed."""
    nonce, txid = b"\x01" * 32, b"\x5a" * 32
    p, s, n = p_hash(b""), s_hash("Ethereum"), n_hash(nonce, txid, 0)
    to = bytes.fromhex(TO[2:])
    digest = sig_hash(p, amount, s, to, n, CHAIN_ID, bytes.fromhex(gateway[2:]))
    sig = AUTHORITY.sign(digest)
    return {
        "status": "signed", "amount": amount, "to": TO, "pHash": "0x" + p.hex(),
        "nHash": "0x" + n.hex(), "sigHash": "0x" + digest.hex(),
        "signature": {"r": "0x" + sig[:32].hex(), "s": "0x" + sig[32:64].hex(), "v": sig[64]},
    }  # fmt: skip


def test_a_signed_deposit_is_minted_once(chain: tuple[str, str]) -> None:
    url, address = chain
    gw = Gateway.connect(url, address, CHAIN_ID)
    dep = _signed_deposit(address)
    assert not gw.minted(bytes.fromhex(str(dep["nHash"])[2:]))
    done = gw.mint(dep, RELAYER)
    assert done.balance == 49_990_000 and gw.balance(TO) == 49_990_000
    assert done.gas_used > 50_000 and done.tx_hash.startswith("0x")
    assert gw.minted(bytes.fromhex(str(dep["nHash"])[2:]))
    with pytest.raises(GatewayError, match="refuses this mint"):
        gw.mint(dep, RELAYER)  # the same deposit output again
    assert gw.balance(TO) == 49_990_000


def test_wrong_chains_contracts_and_unsigned_deposits_are_refused(chain: tuple[str, str]) -> None:
    url, address = chain
    with pytest.raises(GatewayError, match="is chain 31337; the bridge mints on chain 1"):
        Gateway.connect(url, address, 1)
    with pytest.raises(GatewayError, match="no contract"):
        Gateway.connect(url, "0x" + "12" * 20, CHAIN_ID)
    with pytest.raises(GatewayError, match="no EVM node answers"):
        Gateway.connect("http://127.0.0.1:9", address, CHAIN_ID, timeout=2)
    with pytest.raises(GatewayError, match="not signed yet"):
        mint_signature({"status": "final", "signature": None})
    sig = {"r": "0x" + "11" * 32, "s": "0x" + "22" * 32, "v": 28}
    with pytest.raises(GatewayError, match="orphaned"):  # signed, but its bitcoin is gone
        mint_signature({"status": "orphaned", "signature": sig})
    assert mint_signature({"status": "minted", "signature": sig}) == (
        bytes([0x11] * 32 + [0x22] * 32 + [28])
    )
    # a signature for another amount than the deposit's: the gateway refuses it
    dep = _signed_deposit(address, amount=1)
    dep["amount"] = 2
    with pytest.raises(GatewayError, match="refuses this mint"):
        Gateway.connect(url, address, CHAIN_ID).mint(dep, RELAYER)
