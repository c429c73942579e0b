"""The bridge brought up on a running network of validators and an EVM node (docs/bridge.md):
a bridge key (`POST /keygen {"purpose": "bridge"}`), the gateway deployed for it (the
committed artifacts of `tssnode.bridge.contracts`, with web3), and the settings voted at
every validator (`POST /bridge/setup`), waited for until in force at all of them.

Running it again changes nothing: settings in force (`GET /bridge`) are kept as they are;
before that, a bridge key the ledger has (the one remembered in `known`, else the newest
one it lists) and a gateway remembered in `known` that is still on the chain with that
key as its mint authority are reused. What it makes it hands to `remember` at once, so an
interrupted run is continued, not repeated. The one bring-up of `tssnode cluster up
--bridge` (`make run`), the bridge demo, `tssnode bench bridge` and the tests on processes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from eth_typing import ChecksumAddress
from web3 import Web3
from web3.contract import Contract

from tssnode.api.client import ApiClient, ApiError, get_or_none
from tssnode.bridge.contracts import load
from tssnode.cli.anvil import ACCOUNT_0_KEY, ACCOUNT_1, CHAIN_ID
from tssnode.cli.common import CommandError
from tssnode.cli.follow import follow, wait_connected

#: anvil's dev accounts: account 0 pays for mints (with its private key), account 1
#: deploys the gateway (anvil keeps it unlocked) and is what the demo mints to
PAYER_KEY = ACCOUNT_0_KEY
DEPLOYER = ACCOUNT_1
RECIPIENT = ACCOUNT_1
#: a release of fewer satoshis cannot pay its Bitcoin fee and leave an output above dust
DEFAULT_MINIMUM_BURN = 10_000

Say = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class Settings:
    """What `POST /bridge/setup` votes for, beside the key and the gateway."""

    chain_name: str = "Ethereum"
    chain_id: int = CHAIN_ID
    network: str = "regtest"
    confirmations: int = 6
    fee_sats: int = 10_000
    min_deposit_sats: int = 20_000

    def body(self, key_id: str, gateway: str) -> dict[str, Any]:
        return {"key_id": key_id, "gateway": gateway, **asdict(self)}


@dataclass(frozen=True)
class ReleaseSettings:
    """What `POST /bridge/release-setup` votes for (burns back to Bitcoin)."""

    evm_confirmations: int = 1  # (anvil mines a block per transaction)
    bump_after: int = 6
    min_release_sats: int = DEFAULT_MINIMUM_BURN
    max_fee_rate: int = 500
    sweep_at: int = 0


@dataclass(frozen=True)
class BridgeUp:
    """A bridge in force: its key, mint authority, gateway and token, and the EVM node."""

    key_id: str
    threshold: int
    public_key: str
    mint_authority: str
    gateway: str
    token: str
    evm_url: str
    info: dict[str, Any]  # GET /bridge

    def record(self) -> dict[str, Any]:
        """What `tssnode cluster up --bridge` keeps in `<network>/bridge.json`."""
        return {
            "key_id": self.key_id, "mint_authority": self.mint_authority,
            "gateway": self.gateway, "token": self.token, "evm_url": self.evm_url,
            "chain_id": self.info["chain_id"],
        }  # fmt: skip


def deploy_gateway(
    w3: Web3,
    deployer: str,
    authority: str,
    chain_name: str = "Ethereum",
    minimum_burn: int = DEFAULT_MINIMUM_BURN,
) -> tuple[Contract, Contract]:
    """Deploys BridgeGateway from the unlocked account `deployer`: (gateway, its token)."""
    artifact = load("BridgeGateway")
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    tx = factory.constructor(Web3.to_checksum_address(authority), chain_name, minimum_burn)
    receipt = w3.eth.wait_for_transaction_receipt(
        tx.transact({"from": Web3.to_checksum_address(deployer)})
    )
    if receipt["status"] != 1 or receipt["contractAddress"] is None:
        raise CommandError(f"the gateway's deployment failed: {dict(receipt)}")
    gateway = w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])
    token_address = gateway.functions.token().call()
    token = w3.eth.contract(address=token_address, abi=load("WrappedBTC")["abi"])
    return gateway, token


def next_contract(w3: Web3, deployer: str) -> ChecksumAddress:
    """Where `deployer`'s next contract will be: keccak256(rlp([sender, nonce]))[12:]."""
    sender = Web3.to_checksum_address(deployer)
    nonce = w3.eth.get_transaction_count(sender)
    n = nonce.to_bytes((nonce.bit_length() + 7) // 8, "big")  # (0: no bytes)
    rlp_nonce = n if len(n) == 1 and n[0] < 0x80 else bytes([0x80 + len(n)]) + n
    items = bytes([0x80 + 20]) + bytes.fromhex(sender[2:]) + rlp_nonce
    return Web3.to_checksum_address(Web3.keccak(bytes([0xC0 + len(items)]) + items)[12:])


def _gateway(w3: Web3, address: str) -> Contract | None:
    """The gateway at `address`, if there is code there."""
    checksum = Web3.to_checksum_address(address)
    if not w3.eth.get_code(checksum):
        return None
    return w3.eth.contract(address=checksum, abi=load("BridgeGateway")["abi"])


def until(check: Callable[[], Any], what: str, timeout: float, every: float = 0.2) -> Any:
    """`check()`'s first true value, asked every `every` seconds; CommandError after
    `timeout` seconds without one."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise CommandError(f"{what}: not within {timeout:.0f} s")
        time.sleep(every)


def bridge_key(
    clients: Sequence[ApiClient],
    threshold: int,
    known: str | None = None,
    *,
    timeout: float = 600.0,
    remember: Callable[[dict[str, Any]], None] | None = None,
    say: Say = _quiet,
) -> dict[str, Any]:
    """An active bridge key (`GET /keys/{id}`) that every node lists: the ledger's (`known`
    first), else a new one of `threshold`, requested at the first node."""
    api = clients[0]
    found = None
    if known is not None:
        found = get_or_none(api, f"/keys/{known}")
    if not _usable(found):
        found = next((k for k in api.get("/keys") if _usable(k)), None)
    if _usable(found):
        assert found is not None
        key_id = found["key_id"]
        say(f"bridge key: {key_id}, the ledger's (made before), {found['status']}")
    else:
        n = len(clients)
        say(
            f"bridge key: requesting a {threshold + 1}-of-{n} key (threshold {threshold}: any "
            f"{threshold + 1} of the {n} nodes sign) for the bridge at node 1 …"
        )
        key_id = api.post("/keygen", {"threshold": threshold, "purpose": "bridge"})["key_id"]
        if remember is not None:
            remember({"key_id": key_id})
    key: dict[str, Any] = follow(api, "key", key_id, timeout=timeout)
    if key["status"] != "active":
        raise CommandError(f"the bridge key failed: {key.get('error') or 'no reason given'}")
    key_id = key["key_id"]  # (the request's id, which `POST /keygen` answers, finds it too)
    until(
        lambda: all((get_or_none(c, f"/keys/{key_id}") or {}).get("status") == "active"
                    for c in clients),
        "the bridge key active at every node", timeout,
    )  # fmt: skip
    say(
        f"bridge key: {key_id} active, threshold {key['threshold']} (any "
        f"{key['threshold'] + 1} of {len(key['parties'])} sign), public key {key['public_key']}, "
        f"Ethereum address {key['addresses']['eth']} (the mint authority)"
    )
    return key


def _same(a: str, b: str) -> bool:
    """The same EVM address (whatever the case of its hex)."""
    return a.lower() == b.lower()


def _usable(key: Mapping[str, Any] | None) -> bool:
    return key is not None and key.get("purpose") == "bridge" and key["status"] != "failed"


def ensure_gateway(
    w3: Web3,
    authority: str,
    chain_name: str,
    known: str | None = None,
    *,
    remember: Callable[[dict[str, Any]], None] | None = None,
    say: Say = _quiet,
) -> tuple[str, str]:
    """(gateway, token) minting for `authority`: the one at `known` if it is there with
    that authority, else a new deployment."""
    found = _gateway(w3, known) if known else None
    if found is not None and _same(found.functions.mintAuthority().call(), authority):
        token = found.functions.token().call()
        say(f"gateway: {found.address} (deployed before), token {token}")
        return str(found.address), str(token)
    gateway, token = deploy_gateway(w3, DEPLOYER, authority, chain_name)
    if remember is not None:
        remember({"gateway": gateway.address, "token": token.address})
    say(f"gateway: deployed at {gateway.address}, token {token.address} (WBTC, 8 decimals)")
    return str(gateway.address), str(token.address)


def _restore_gateway(w3: Web3, info: Mapping[str, Any], say: Say) -> None:
    """The settings in force name a gateway the EVM node lacks (anvil lost its state: it
    was killed, not stopped). The settings never change, so the gateway is deployed
    again, if it lands at the same address (the deployer's first contract on a fresh
    chain); otherwise nothing can mend it."""
    address = info["gateway"]
    if _gateway(w3, address) is not None:
        return
    if not _same(next_contract(w3, DEPLOYER), address):
        raise CommandError(
            f"the bridge's gateway {address} is not on the EVM chain (its state was lost) "
            "and cannot be deployed there again; the bridge's settings never change, so "
            "start this network afresh (stop it and remove its directory)"
        )
    deploy_gateway(w3, DEPLOYER, info["mint_authority"], info["chain_name"])
    say(f"gateway: the EVM chain had lost it; deployed again at {address} (no past mints)")


def vote(
    clients: Sequence[ApiClient],
    body: Mapping[str, Any],
    *,
    say: Say = _quiet,
    route: str = "/bridge/setup",
) -> None:
    """This settings' vote at every node (a node that voted already, or settings in force
    by the time its vote arrives, is fine)."""
    what = route.rsplit("/", 1)[-1].replace("-", " ")
    for i, api in enumerate(clients, start=1):
        try:
            out = api.post(route, dict(body))
            say(f"bridge {what}: node {i} voted (transaction {out['tx'][:16]}…)")
        except ApiError as exc:
            if exc.status != 409 or "already" not in exc.message:
                raise
            say(f"bridge {what}: node {i}: {exc.message}")


def bring_up(
    clients: Sequence[ApiClient],
    evm_url: str,
    *,
    threshold: int,
    settings: Settings | None = None,
    release: ReleaseSettings | None = None,
    known: Mapping[str, Any] | None = None,
    remember: Callable[[dict[str, Any]], None] | None = None,
    say: Say = _quiet,
    timeout: float = 600.0,
) -> BridgeUp:
    """The bridge in force on the network of `clients` (every validator's API), minting on
    the EVM node at `evm_url`: made, deployed and voted as far as it is not already."""
    settings = settings or Settings()
    known = known or {}
    w3 = Web3(Web3.HTTPProvider(evm_url, request_kwargs={"timeout": 30}))
    try:
        chain = w3.eth.chain_id
    except Exception as exc:  # (web3 raises its own and requests' errors)
        raise CommandError(f"no EVM node answers at {evm_url}: {exc}") from None
    if chain != settings.chain_id:
        raise CommandError(f"the EVM node at {evm_url} is chain {chain}, not {settings.chain_id}")
    wait_connected(clients, timeout=90)
    info = clients[0].get("/bridge")
    if info["set_up"]:
        say(f"bridge: in force since block {info['height']} (set up before)")
        _restore_gateway(w3, info, say)
        key = clients[0].get(f"/keys/{info['key_id']}")
    else:
        key = bridge_key(
            clients, threshold, known.get("key_id"), timeout=timeout, remember=remember, say=say
        )
        gateway, _ = ensure_gateway(
            w3, key["addresses"]["eth"], settings.chain_name, known.get("gateway"),
            remember=remember, say=say,
        )  # fmt: skip
        vote(clients, settings.body(key["key_id"], gateway), say=say)
        until(
            lambda: all(c.get("/bridge")["set_up"] for c in clients),
            "the bridge settings in force at every node", timeout,
        )  # fmt: skip
        info = clients[0].get("/bridge")
        if info["key_id"] != key["key_id"] or not _same(info["gateway"], gateway):
            raise CommandError(
                f"other settings won the vote: key {info['key_id']}, gateway {info['gateway']}"
            )
        say(f"bridge: in force since block {info['height']}")
    if info.get("release") is None:
        vote(clients, asdict(release or ReleaseSettings()), say=say, route="/bridge/release-setup")
        until(
            lambda: all(c.get("/bridge").get("release") for c in clients),
            "the release settings in force at every node", timeout,
        )  # fmt: skip
        info = clients[0].get("/bridge")
        say(f"releases: in force since block {info['release']['height']}")
    gateway_contract = _gateway(w3, info["gateway"])
    assert gateway_contract is not None  # (checked or deployed above)
    return BridgeUp(
        key_id=info["key_id"],
        threshold=int(key["threshold"]),
        public_key=key["public_key"],
        mint_authority=info["mint_authority"],
        gateway=info["gateway"],
        token=str(gateway_contract.functions.token().call()),
        evm_url=evm_url,
        info=info,
    )
