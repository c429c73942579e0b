"""`make run` and `make demo` with the bridge, on real processes (the regtest service,
anvil and four `tssnode run` nodes at the insecure-test tier), each in a directory of its
own, never the checkout's `.local/`:

- `tssnode cluster up --dir DIR --bridge` brings up the chains, the nodes and the bridge
  and says where each part is; a second run finds everything up and changes nothing (no
  new key, no new deployment, the same settings); `cluster status` shows the chains and
  `cluster down` stops them with the nodes;
- `tssnode cluster demo 4 --bridge` takes one deposit to a minted balance on a network of
  its own and prints each step with its numbers, then leaves no process and no directory.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import tempfile
from pathlib import Path

import pytest
from web3 import Web3

from tssnode import launch
from tssnode.cli import anvil as anvil_cli
from tssnode.cli import cluster
from tssnode.cli.bridgenet import DEPLOYER
from tssnode.testing.cluster import make_cluster
from tssnode.testing.ports import free_port


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cluster.cmd_cluster(list(argv))
    return code, out.getvalue()


def field(out: str, label: str) -> str:
    """The value of a `label  value` line of the summary `up --bridge` prints."""
    match = re.search(rf"(?m)^{label}\s{{2,}}(\S+)", out)
    assert match is not None, out
    return match.group(1)


# (Slow tier: about 33 s; the fast tier keeps the bridge demo below, the same `bring_up` on
# a throw-away network, and tests/cli/test_bridge_local.py on `cluster up --bridge`.)
@pytest.mark.slow
def test_cluster_up_bridge_twice_then_down(tmp_path: Path) -> None:
    evm_url = f"http://127.0.0.1:{free_port()}"
    bitcoin = {
        "url": f"http://127.0.0.1:{free_port()}",
        "cookie_file": str(tmp_path / "regtest" / "regtest" / ".cookie"), "poll": 0.5,
    }  # fmt: skip
    nodes = make_cluster(
        tmp_path, 4, vault={"insecure_local_key": True}, bitcoin_rpc=bitcoin,
        evm_rpc={"url": evm_url, "poll": 0.5},
    )  # fmt: skip
    up = ("up", "--dir", str(tmp_path), "--bridge", "--evm-rpc", evm_url)
    pid_files = [n.data_dir / "node.pid" for n in nodes] + [
        tmp_path / "regtest" / "regtest.pid", tmp_path / "anvil" / "anvil.pid"
    ]  # fmt: skip
    try:
        code, first = run(*up)
        assert code == 0, first
        assert "regtest: mined 101 blocks" in first
        assert "bridge key: requesting a 3-of-4 key (threshold 2" in first
        assert "gateway: deployed at " in first
        assert [f"bridge setup: node {i} " in first for i in (1, 2, 3, 4)] == [True] * 4
        gateway, key_id = field(first, "gateway"), field(first, "bridge key")
        assert field(first, "regtest RPC") == bitcoin["url"]
        assert field(first, "anvil RPC") == evm_url
        record = json.loads((tmp_path / "bridge.json").read_text())
        assert (record["gateway"], record["key_id"]) == (gateway, key_id)
        assert record["token"] == field(first, "token")
        with nodes[3].client() as api:
            info = api.get("/bridge")
            keys = api.get("/keys")
        assert info["set_up"] and info["gateway"] == gateway and info["key_id"] == key_id
        assert info["mint_authority"] == field(first, "mint authority") == record["mint_authority"]
        w3 = Web3(Web3.HTTPProvider(evm_url))
        deployed = w3.eth.get_transaction_count(DEPLOYER)
        pids = [launch.read_pid(p) for p in pid_files]

        code, second = run(*up)  # everything is up: nothing changes
        assert code == 0, second
        assert [launch.read_pid(p) for p in pid_files] == pids
        assert "started" not in second and "mined" not in second
        assert "requesting" not in second and "deployed" not in second and "voted" not in second
        assert "bridge: in force since block " in second and "(set up before)" in second
        assert (field(second, "gateway"), field(second, "bridge key")) == (gateway, key_id)
        assert w3.eth.get_transaction_count(DEPLOYER) == deployed
        with nodes[0].client() as api:
            assert api.get("/keys") == keys and api.get("/bridge")["height"] == info["height"]

        code, status = run("status", "--dir", str(tmp_path))
        assert code == 0
        assert f"regtest: running (pid {pids[4]}), RPC {bitcoin['url']}" in status
        assert f"anvil: running (pid {pids[5]}), RPC {evm_url}" in status
        assert f"bridge: gateway {gateway}" in status

        code, down = run("down", "--dir", str(tmp_path))
        assert code == 0
        assert f"anvil: stopped (pid {pids[5]})" in down
        assert f"regtest: stopped (pid {pids[4]})" in down
        assert not any(launch.alive(p) for p in pids[:5] if p) and not anvil_cli.is_anvil(pids[5])
        assert not any(p.exists() for p in pid_files)
    finally:
        with contextlib.redirect_stdout(io.StringIO()):
            cluster.cmd_cluster(["down", "--dir", str(tmp_path)])
        for p in pid_files:  # not our children (detached): signal only
            pid = launch.read_pid(p)
            if pid and (launch.alive(pid) or anvil_cli.is_anvil(pid)):
                os.kill(pid, signal.SIGKILL)


def test_the_bridge_demo_mints_a_deposit_and_cleans_up(tmp_path, monkeypatch, capsys):
    root = tmp_path / "tssnode-demo-x"

    def mkdtemp(prefix: str = "") -> str:
        assert prefix == "tssnode-demo-"
        root.mkdir()
        return str(root)

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
    code = cluster.cmd_cluster(["demo", "4", "--bridge", "--tier", "insecure-test"])
    out = capsys.readouterr()
    assert code == 0, out.err
    text = out.out
    address = re.search(r"deposit address: node 2 gives (bcrt1\w+) for 0x7099", text)
    txid = re.search(r"payment: 0.5 BTC from the regtest wallet, txid ([0-9a-f]{64}), output", text)
    assert address and txid, text
    assert "mined 6 blocks: the payment has 6 confirmations" in text
    assert re.search(r"final: 3 of 4 validators saw it at depth; .* to mint 49990000", text)
    assert re.search(r"sigHash 0x[0-9a-f]{64}", text)
    assert re.search(r"mint signature: r 0x[0-9a-f]{64}\n  s 0x[0-9a-f]{64}, v 2[78]", text)
    authority = re.search(r"(?m)^mint authority\s+(0x[0-9a-fA-F]{40})$", text)
    assert authority and f"ecrecover (eth-keys): {authority.group(1)} = the mint" in text
    assert "node 1 shows the deposit minted" in text
    assert re.search(r"(?m)^wrapped balance\s+49990000 sats of WBTC \(0.4999 BTC\)", text)
    assert "= 50000000 deposited − 10000 fee" in text
    assert text.rstrip().endswith("demo network stopped") and "Traceback" not in out.err
    assert not root.exists()  # removed after a good run
    left = [
        p for p in Path("/proc").iterdir()
        if p.name.isdigit() and str(root).encode() in _cmdline(p)
    ]  # fmt: skip
    assert left == []  # its nodes and regtest service are gone (anvil: killed and reaped)


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""
