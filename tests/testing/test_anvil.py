"""The anvil harness: it finds the port anvil prints, and fails clearly (and leaves no
process behind) when anvil is missing, exits, or never says where it listens."""

from __future__ import annotations

import os
import stat
import urllib.request
from pathlib import Path

import pytest

from tssnode.testing import anvil as anvil_mod
from tssnode.testing.anvil import AnvilError, running_anvil


def test_anvil_serves_json_rpc_on_the_port_it_printed_and_is_reaped():
    with running_anvil(chain_id=4242, accounts=1) as anvil:
        request = urllib.request.Request(
            anvil.url,
            data=b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}',
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert b'"result":"0x1092"' in answer.read()  # 4242
        assert anvil.url == f"http://127.0.0.1:{anvil.port}" and anvil.port > 0
        assert anvil.process.poll() is None
    assert anvil.process.returncode is not None  # killed and waited for


def _script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "fake-anvil"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_a_missing_binary_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv(anvil_mod.ENV_BINARY, str(tmp_path / "nothing-here"))
    with pytest.raises(AnvilError, match=r"no anvil at .*nothing-here"), running_anvil():
        pass


def test_an_anvil_that_exits_is_reported_with_its_output(monkeypatch, tmp_path):
    monkeypatch.setenv(anvil_mod.ENV_BINARY, str(_script(tmp_path, "echo 'bad flag'; exit 2")))
    with pytest.raises(AnvilError, match=r"(?s)exited with 2.*bad flag"), running_anvil():
        pass


def test_an_anvil_that_never_listens_times_out_and_is_killed(monkeypatch, tmp_path):
    pid_file = tmp_path / "pid"
    fake = _script(tmp_path, f"echo $$ > {pid_file}; echo starting; exec sleep 60")
    monkeypatch.setenv(anvil_mod.ENV_BINARY, str(fake))
    expected = r"(?s)within 0.5 s \(still running\).*starting"
    with pytest.raises(AnvilError, match=expected), running_anvil(timeout=0.5):
        pass
    with pytest.raises(ProcessLookupError):  # killed and reaped: not even a zombie is left
        os.kill(int(pid_file.read_text()), 0)
