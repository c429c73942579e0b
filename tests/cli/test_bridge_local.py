"""The pieces of `tssnode cluster up --bridge` (what `make run` runs), without nodes: the
example configs point the nodes at the chains it starts; the regtest service and anvil
start detached once (a second start finds them running, mines nothing more), keep their
chains across `down` and `up`, and are stopped by `cluster down`; the bridge bring-up,
over stand-in APIs and a real anvil, makes the key, deploys the gateway and votes once,
and reuses what an earlier run made; and the node's Bitcoin watch reads the cookie at
every connection (the service writes a new one at every start)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from web3 import Web3

from tssnode import launch
from tssnode.api.client import ApiError
from tssnode.bridge.contracts import load
from tssnode.cli import anvil as anvil_cli
from tssnode.cli import btcregtest, cluster, configs, daemon, localchains
from tssnode.cli.bridgenet import DEPLOYER, Settings, bring_up, deploy_gateway, next_contract
from tssnode.cli.common import CommandError
from tssnode.config import NodeConfig
from tssnode.testing.anvil import Anvil, running_anvil
from tssnode.testing.cluster import make_cluster
from tssnode.testing.evm import KeyAuthority
from tssnode.testing.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
AUTHORITY = KeyAuthority(bytes(31) + b"\x07").address
OTHER = KeyAuthority(bytes(31) + b"\x09").address


# -- the configs ------------------------------------------------------------------------------


def test_the_example_nodes_watch_the_chains_that_up_bridge_starts():
    for i in range(1, 5):
        cfg = NodeConfig.load(ROOT / "configs" / "local" / f"node{i}.toml")
        btc = cfg.bridge.bitcoin
        assert btc.url == "http://127.0.0.1:18443"  # bitcoind's regtest port (docs)
        assert btc.cookie_file is not None
        assert btc.cookie_file.resolve() == ROOT / ".local" / "regtest" / "regtest" / ".cookie"
        assert cfg.bridge.evm.url == "http://127.0.0.1:8545"
        assert cfg.data_dir.resolve().parent == ROOT / ".local"  # the chains live beside


def test_an_installed_copy_keeps_the_chains_in_its_own_directory(tmp_path):
    paths = configs._materialize(configs.example_configs(), 4, tmp_path)
    cfg = NodeConfig.load(paths[1])
    assert cfg.bridge.bitcoin.cookie_file == tmp_path / "regtest" / "regtest" / ".cookie"
    chains = localchains.chains_of(paths)
    assert chains.root == tmp_path
    assert chains.cookie == tmp_path / "regtest" / "regtest" / ".cookie"
    assert (chains.bitcoin_url, chains.evm_url) == (
        "http://127.0.0.1:18443", "http://127.0.0.1:8545"
    )  # fmt: skip
    other = localchains.chains_of(paths, "http://127.0.0.1:9545")
    assert other.evm_url == "http://127.0.0.1:9545"
    localchains.remember(tmp_path, {"evm_url": "http://127.0.0.1:9545"})
    assert localchains.chains_of(paths).evm_url == "http://127.0.0.1:9545"  # as the last time


def test_nodes_without_a_bitcoin_section_are_refused(tmp_path, capsys):
    make_cluster(tmp_path, 2)
    code = cluster.cmd_cluster(["up", "--dir", str(tmp_path), "--bridge"])
    err = capsys.readouterr().err
    assert code == 2 and "has no [bridge.bitcoin] url and cookie_file" in err
    assert not (tmp_path / "regtest").exists() and not (tmp_path / "anvil").exists()
    assert cluster.cmd_cluster(["up", "--dir", str(tmp_path), "--evm-rpc", "http://x:1"]) == 2


# -- the chains, detached ---------------------------------------------------------------------


@pytest.fixture
def chains(tmp_path: Path) -> Iterator[localchains.Chains]:
    """Where a network in tmp_path keeps its chains (free ports); stopped afterwards."""
    where = localchains.Chains(
        tmp_path, f"http://127.0.0.1:{free_port()}",
        tmp_path / "regtest" / "regtest" / ".cookie", f"http://127.0.0.1:{free_port()}",
    )  # fmt: skip
    try:
        yield where
    finally:
        localchains.stop(tmp_path, wait=10)


def pids(chains: localchains.Chains) -> tuple[int | None, int | None]:
    return (
        launch.read_pid(chains.regtest / "regtest.pid"),
        launch.read_pid(chains.anvil / "anvil.pid"),
    )


def test_the_chains_start_once_keep_their_state_and_stop(chains, capsys):
    localchains.start(chains)
    out = capsys.readouterr().out
    regtest_pid, anvil_pid = pids(chains)
    assert f"regtest: started (pid {regtest_pid})" in out
    assert f"anvil: started (pid {anvil_pid})" in out
    assert "regtest: mined 101 blocks" in out
    assert f"regtest: RPC {chains.bitcoin_url}, height 101, wallet 50.00000000 BTC" in out
    assert launch.alive(regtest_pid) and anvil_cli.is_anvil(anvil_pid)
    assert (chains.anvil / "payer.key").stat().st_mode & 0o777 == 0o600
    w3 = Web3(Web3.HTTPProvider(chains.evm_url))
    gateway, _ = deploy_gateway(w3, DEPLOYER, AUTHORITY)

    localchains.start(chains)  # again: nothing new
    out = capsys.readouterr().out
    assert pids(chains) == (regtest_pid, anvil_pid)
    assert f"regtest: already running (pid {regtest_pid})" in out
    assert f"anvil: already running (pid {anvil_pid})" in out
    assert "mined" not in out and "height 101," in out

    localchains.stop(chains.root)
    out = capsys.readouterr().out
    assert f"anvil: stopped (pid {anvil_pid})" in out
    assert f"regtest: stopped (pid {regtest_pid})" in out
    assert not launch.alive(regtest_pid) and not anvil_cli.is_anvil(anvil_pid)
    assert pids(chains) == (None, None)
    assert (chains.anvil / "state.json").is_file()  # dumped on SIGTERM

    localchains.start(chains)  # a restart: the same chains
    out = capsys.readouterr().out
    assert "mined" not in out and "height 101," in out
    assert w3.eth.get_code(gateway.address)  # anvil's state came back
    assert localchains.load_record(chains.root)["evm_url"] == chains.evm_url
    lines = localchains.status_lines(chains.root)
    assert lines[0].startswith(f"regtest: running (pid {pids(chains)[0]}), RPC ")
    assert lines[1] == f"anvil: running (pid {pids(chains)[1]}), RPC {chains.evm_url}"


def test_cluster_down_stops_the_chains_too(tmp_path, capsys):
    make_cluster(tmp_path, 2)  # never started: `down` finds no node running
    chains = localchains.Chains(
        tmp_path, f"http://127.0.0.1:{free_port()}", tmp_path / "cookie",
        f"http://127.0.0.1:{free_port()}",
    )  # fmt: skip
    localchains.start(chains)
    regtest_pid, anvil_pid = pids(chains)
    capsys.readouterr()
    assert cluster.cmd_cluster(["down", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "node1: not running" in out
    assert f"anvil: stopped (pid {anvil_pid})" in out
    assert f"regtest: stopped (pid {regtest_pid})" in out
    assert not launch.alive(regtest_pid) and not anvil_cli.is_anvil(anvil_pid)


def test_a_port_another_program_holds_is_refused(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        chains = localchains.Chains(
            tmp_path, f"http://127.0.0.1:{port}", tmp_path / "cookie", "http://127.0.0.1:1"
        )
        with pytest.raises(CommandError, match=rf"127.0.0.1:{port} is taken by another"):
            localchains.start(chains)
    assert not (tmp_path / "regtest" / "regtest.pid").exists()


# -- the bring-up, over stand-in APIs ---------------------------------------------------------


class Ledger:
    """What four stand-in nodes share: keys, setup votes, the settings in force."""

    def __init__(self) -> None:
        self.keys: dict[str, dict[str, Any]] = {}
        self.votes: dict[str, set[int]] = {}
        self.info: dict[str, Any] = {"set_up": False, "proposals": 0}
        self.posts: list[tuple[int, str]] = []

    def add_key(self, authority: str) -> str:
        key_id = f"{len(self.keys) + 1:032x}"
        self.keys[key_id] = {
            "key_id": key_id, "status": "active", "purpose": "bridge", "threshold": 2,
            "parties": ["a", "b", "c", "d"], "public_key": "02" + "11" * 32,
            "addresses": {"eth": authority},
        }  # fmt: skip
        return key_id


class StandInApi:
    """One node's API as `bring_up` uses it (GET /status, /keys, /bridge; POST /keygen,
    /bridge/setup), refusing a second vote as the ledger does (409)."""

    def __init__(self, ledger: Ledger, index: int) -> None:
        self.ledger, self.index = ledger, index
        self.base_url = f"http://stand-in-{index}"

    def get(self, path: str, **_: Any) -> Any:
        if path == "/status":
            return {"peers_connected": 3}
        if path == "/bridge":
            return dict(self.ledger.info)
        if path == "/keys":
            return list(self.ledger.keys.values())
        key = self.ledger.keys.get(path.removeprefix("/keys/"))
        if key is None:
            raise ApiError(404, f"no {path}")
        return key

    def post(self, path: str, body: dict[str, Any]) -> Any:
        self.ledger.posts.append((self.index, path))
        if path == "/keygen":
            assert body == {"threshold": 2, "purpose": "bridge"}
            return {"key_id": self.ledger.add_key(AUTHORITY), "tx": "00" * 32}
        if path == "/bridge/release-setup":
            return self._release_vote(body)
        assert path == "/bridge/setup"
        if self.ledger.info["set_up"]:
            raise ApiError(409, "the bridge is already set up")
        voters = self.ledger.votes.setdefault(repr(sorted(body.items())), set())
        if self.index in voters:
            raise ApiError(409, "this validator already voted for these settings")
        voters.add(self.index)
        if len(voters) == 3:
            key = self.ledger.keys[body["key_id"]]
            self.ledger.info = {
                **body, "set_up": True, "proposals": 0, "height": 9,
                "mint_authority": key["addresses"]["eth"],
            }  # fmt: skip
        return {"tx": f"{self.index:064x}"}

    def _release_vote(self, body: dict[str, Any]) -> Any:
        assert self.ledger.info["set_up"]  # (after the bridge's own settings)
        if self.ledger.info.get("release"):
            raise ApiError(409, "the release settings are already in force")
        voters = self.ledger.votes.setdefault("release" + repr(sorted(body.items())), set())
        voters.add(self.index)
        if len(voters) == 3:
            self.ledger.info["release"] = {**body, "height": 10}
        return {"tx": f"{self.index:064x}"}


@pytest.fixture(scope="module")
def evm() -> Iterator[Anvil]:
    with running_anvil(accounts=2) as running:
        yield running


def nodes(ledger: Ledger) -> list[Any]:
    return [StandInApi(ledger, i) for i in range(4)]


def nonce(evm: Anvil) -> int:
    return Web3(Web3.HTTPProvider(evm.url)).eth.get_transaction_count(DEPLOYER)


def test_the_bring_up_makes_deploys_and_votes_once(evm):
    ledger, remembered = Ledger(), {}
    up = bring_up(nodes(ledger), evm.url, threshold=2, remember=remembered.update)
    assert ledger.posts == [(0, "/keygen")] + [
        (i, route) for route in ("/bridge/setup", "/bridge/release-setup") for i in range(4)
    ]
    assert ledger.info["release"]["evm_confirmations"] == 1
    assert up.mint_authority == AUTHORITY and up.info["set_up"]
    w3 = Web3(Web3.HTTPProvider(evm.url))
    gateway = w3.eth.contract(address=up.gateway, abi=load("BridgeGateway")["abi"])
    assert gateway.functions.mintAuthority().call() == AUTHORITY
    assert gateway.functions.token().call() == up.token
    assert remembered == {"key_id": up.key_id, "gateway": up.gateway, "token": up.token}
    assert ledger.info["confirmations"] == Settings().confirmations == 6

    deployed = nonce(evm)
    again = bring_up(nodes(ledger), evm.url, threshold=2, remember=remembered.update)
    assert again == up
    assert len(ledger.posts) == 9 and nonce(evm) == deployed  # nothing asked, nothing deployed


def test_an_interrupted_bring_up_reuses_its_key_and_gateway(evm):
    ledger = Ledger()
    key_id = ledger.add_key(AUTHORITY)
    w3 = Web3(Web3.HTTPProvider(evm.url))
    earlier, _ = deploy_gateway(w3, DEPLOYER, AUTHORITY)
    api = nodes(ledger)
    deployed = nonce(evm)
    first_vote = Settings().body(key_id, earlier.address)
    api[0].post("/bridge/setup", first_vote)  # node 1 voted before the interruption
    up = bring_up(api, evm.url, threshold=2, known={"key_id": key_id, "gateway": earlier.address})
    assert (up.key_id, up.gateway) == (key_id, earlier.address)
    assert nonce(evm) == deployed
    setups = [p for _, p in ledger.posts if p == "/bridge/setup"]
    assert setups == ["/bridge/setup"] * 5  # its own vote, then four
    assert ledger.info["gateway"] == earlier.address


def test_a_gateway_minting_for_another_key_is_not_reused(evm):
    ledger = Ledger()
    w3 = Web3(Web3.HTTPProvider(evm.url))
    stranger, _ = deploy_gateway(w3, DEPLOYER, OTHER)
    up = bring_up(nodes(ledger), evm.url, threshold=2, known={"gateway": stranger.address})
    assert up.gateway != stranger.address and up.mint_authority == AUTHORITY


def test_a_gateway_the_chain_lost_is_deployed_again_at_its_address(evm):
    w3 = Web3(Web3.HTTPProvider(evm.url))
    lost = next_contract(w3, DEPLOYER)  # where the deployer's next contract will land
    ledger = Ledger()
    key_id = ledger.add_key(AUTHORITY)
    ledger.info = {
        **Settings().body(key_id, lost), "set_up": True, "proposals": 0, "height": 9,
        "mint_authority": AUTHORITY,
    }  # fmt: skip
    assert not w3.eth.get_code(lost)
    up = bring_up(nodes(ledger), evm.url, threshold=2)
    assert up.gateway == lost and w3.eth.get_code(lost)
    assert {p for _, p in ledger.posts} == {"/bridge/release-setup"}  # (not voted before)
    ledger.info["gateway"] = next_contract(w3, OTHER)  # never the deployer's
    with pytest.raises(CommandError, match="cannot be deployed there again"):
        bring_up(nodes(ledger), evm.url, threshold=2)


# -- the node's watch reads the cookie at every connection ------------------------------------


def test_the_bitcoin_watch_reads_the_cookie_at_every_connection(tmp_path, monkeypatch):
    cookie = tmp_path / ".cookie"
    cfg = NodeConfig.parse(
        '[node]\nnetwork_id = "x"\ndata_dir = "d"\n[net]\nlisten = "/ip4/127.0.0.1/tcp/1"\n'
        f'[bridge.bitcoin]\nurl = "http://127.0.0.1:18443"\ncookie_file = "{cookie}"\n',
        base_dir=tmp_path,
    )
    urls: list[str] = []
    monkeypatch.setattr(daemon, "RpcSource", lambda url, timeout: urls.append(url))
    core = SimpleNamespace(
        bridge=None, submit=None, identity=SimpleNamespace(public_bytes=lambda: b"me")
    )
    watch = daemon.Node._bitcoin_watch(SimpleNamespace(config=cfg), core)  # type: ignore[arg-type]
    with pytest.raises(OSError):  # not yet written: a failed look, not a failed start
        watch.make_source()
    for password in ("first", "second"):  # a restart of the service writes a new one
        cookie.write_text(f"__cookie__:{password}")
        watch.make_source()
        assert urls[-1] == f"http://__cookie__:{password}@127.0.0.1:18443"
    assert btcregtest.service_url("http://127.0.0.1:1", ("u", "p")) == "http://u:p@127.0.0.1:1"


def test_make_run_and_make_demo_bring_the_bridge_up():
    makefile = (ROOT / "Makefile").read_text()

    def recipe(target: str) -> str:
        return makefile.split(f"\n{target}:", 1)[1].split("\n\n", 1)[0]

    assert "tssnode cluster up 4 --bridge\n" in recipe("run")
    assert "tssnode cluster demo 4 --bridge" in recipe("demo")
    assert "tssnode cluster down 4" in recipe("stop")  # (which stops the chains too)


def test_a_bridge_demo_that_fails_says_where_and_stops_what_it_started(
    tmp_path, monkeypatch, capsys
):
    root = tmp_path / "tssnode-demo-x"
    monkeypatch.setattr("tempfile.mkdtemp", lambda prefix="": str(root.mkdir() or root))
    monkeypatch.setenv(anvil_cli.ENV_BINARY, str(tmp_path / "no-anvil"))
    code = cluster.cmd_cluster(["demo", "--bridge"])
    out = capsys.readouterr()
    assert code == 1
    assert out.err.startswith(
        f"tssnode cluster demo: starting anvil: no anvil at {tmp_path / 'no-anvil'}"
    )
    assert "Traceback" not in out.err
    assert "regtest: RPC http://127.0.0.1:" in out.out  # it had started, and is stopped:
    log = (root / "btc" / "regtest.log").read_text()
    assert log.rstrip().endswith("INFO tssnode.regtest: stopped")
    assert f"its configs, data and logs are in {root}" in out.err
    assert cluster.cmd_cluster(["demo", "3", "--bridge"]) == 2  # (4 to 7 nodes)


def test_a_detached_anvil_that_exits_is_reported_with_its_log(tmp_path, monkeypatch):
    fake = tmp_path / "anvil"
    fake.write_text("#!/bin/sh\necho 'error: bad state file'\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv(anvil_cli.ENV_BINARY, str(fake))
    with pytest.raises(anvil_cli.AnvilError, match=r"(?s)anvil exited \(log .*\):\n.*bad state"):
        anvil_cli.start_detached(
            "127.0.0.1", free_port(), state=tmp_path / "s.json", log=tmp_path / "anvil.log"
        )
