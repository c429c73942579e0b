"""`tssnode console`: argument handling, and finding or starting the node of a config
(the daemon part runs real processes, but never a node: the command is injected)."""

from __future__ import annotations

import os
import re
import signal
import sys
from pathlib import Path

import pytest

from tui import cli
from tui.daemon import DaemonError, ensure_running, read_config


def test_attach_needs_a_token_file(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--attach", "http://127.0.0.1:3001"])
    assert exit_info.value.code == 2
    assert "--attach needs --token-file" in capsys.readouterr().err


def test_attach_with_a_missing_token_file(tmp_path, capsys):
    code = cli.main(["--attach", "http://x", "--token-file", str(tmp_path / "api.token")])
    assert code == 2
    assert "no token file" in capsys.readouterr().err


def test_one_of_attach_and_config(capsys):
    with pytest.raises(SystemExit):
        cli.main([])
    with pytest.raises(SystemExit):
        cli.main(["--attach", "http://x", "--config", "node.toml"])


def test_tssnode_console_dispatches_here(capsys):
    from tssnode.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["console", "--help"])
    assert exit_info.value.code == 0
    assert "--attach URL" in capsys.readouterr().out


#: the sections every node config has (`tssnode.config`), with the data directory {d}
NODE = '[node]\nnetwork_id = "test"\ndata_dir = "{d}"\n[net]\nlisten = "/ip4/127.0.0.1/tcp/4101"\n'


@pytest.mark.parametrize(
    "text, url",
    [
        (NODE + '[api]\nlisten = "127.0.0.1:3001"', "http://127.0.0.1:3001"),
        (NODE + '[api]\nlisten = "localhost:3002"', "http://localhost:3002"),
        (NODE + '[api]\nlisten = "[::1]:3003"', "http://[::1]:3003"),
        (NODE, "http://127.0.0.1:8600"),  # tssnode.config's default
    ],
)
def test_read_config(tmp_path, text, url):
    """The console reads a node config with the node's own parser (`tssnode.config`)."""
    path = tmp_path / "node.toml"
    path.write_text(text.format(d=tmp_path / "data"))
    config = read_config(path)
    assert config.api_url == url
    assert config.token_file == tmp_path / "data" / "api.token"


def test_relative_data_dir_is_relative_to_the_config(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()  # not this one, though it is in the working directory
    path = tmp_path / "configs" / "node.toml"
    path.parent.mkdir()
    path.write_text(NODE.format(d="data"))
    monkeypatch.chdir(tmp_path)
    config = read_config(path)
    assert config.data_dir == tmp_path / "configs" / "data"
    assert config.api_url == "http://127.0.0.1:8600"  # tssnode.config's default


def test_the_local_network_configs():
    root = Path(__file__).resolve().parents[2]
    config = read_config(root / "configs" / "local" / "node1.toml")
    assert config.api_url == "http://127.0.0.1:3001"
    assert config.token_file.resolve() == root / ".local" / "node1" / "api.token"


def test_bad_configs(tmp_path):
    path = tmp_path / "node.toml"
    for text, why in (
        ("api = ", "cannot read node config .*not valid TOML"),
        (NODE.format(d="x") + "[api]\nlisten = 3001", "api.listen: must be a string"),
        (NODE.format(d="x") + '[api]\nlisten = "127.0.0.1"', "api.listen: must be host:port"),
        ('[node]\nnetwork_id = "test"\n[net]\nlisten = "/ip4/127.0.0.1/tcp/1"', "node.data_dir"),
        # what the node refuses, the console refuses too (it once took other spellings)
        ('api = "127.0.0.1:1"\n' + NODE.format(d="x"), "api: must be a table"),
    ):
        path.write_text(text)
        with pytest.raises(DaemonError, match=why):
            read_config(path)


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(NODE.format(d=tmp_path / "data") + '[api]\nlisten = "127.0.0.1:9"')
    return path


def test_a_node_that_answers_is_not_started(tmp_path):
    config = ensure_running(
        _config(tmp_path), probe=lambda url: True, argv=["/nonexistent/never-started"]
    )
    assert config.api_url == "http://127.0.0.1:9"
    assert not (tmp_path / "data" / "node.log").exists()


def test_starts_the_node_detached_and_waits_for_api_and_token(tmp_path):
    token = tmp_path / "data" / "api.token"
    # stands in for `tssnode run` (and says so in its command line, as `launch.alive` asks):
    # writes the token, then stays up
    script = (
        f"import pathlib, time; pathlib.Path({str(token)!r}).write_text('t'); time.sleep(30)"
        "  # tssnode stand-in"
    )
    checks: list[str] = []

    def probe(url: str) -> bool:
        checks.append(url)
        return token.exists() and len(checks) > 2

    pid = None
    try:
        config = ensure_running(
            _config(tmp_path),
            probe=probe,
            argv=[sys.executable, "-c", script],
            say=lambda text: None,
            timeout=20,
        )
        assert config.token_file.read_text() == "t"
        assert (tmp_path / "data" / "node.log").exists()
        pid = int((tmp_path / "data" / "node.pid").read_text())
        os.kill(pid, 0)  # left running for the console
        assert os.getsid(pid) != os.getsid(0)  # in a session of its own
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # and nobody's child here
    finally:
        if pid is not None:
            os.kill(pid, signal.SIGKILL)


def _start_a_node_that_never_answers(tmp_path: Path, argv: list[str]) -> None:
    ensure_running(
        _config(tmp_path), probe=lambda url: False, say=lambda text: None, argv=argv, timeout=20
    )


def test_a_node_command_that_cannot_run_is_reported_with_its_log(tmp_path):
    with pytest.raises(DaemonError, match=r"the node exited:\n.*/nonexistent/tssnode: not found"):
        _start_a_node_that_never_answers(tmp_path, ["/nonexistent/tssnode"])


def test_a_node_that_exits_is_reported_with_its_log(tmp_path):
    # as `tssnode run` does: says why in its log, leaves its exit code, exits
    record = tmp_path / "data" / "node.exit"
    script = (
        "import json, os, pathlib, sys; print('genesis file not found', flush=True); "
        f"pathlib.Path({str(record)!r}).write_text(json.dumps({{'pid': os.getpid(), 'code': 3}}));"
        " sys.exit(3)  # tssnode stand-in"
    )
    with pytest.raises(DaemonError, match=re.escape("exited with code 3:\ngenesis file not")):
        _start_a_node_that_never_answers(tmp_path, [sys.executable, "-c", script])


def test_a_node_killed_before_its_api_answers_is_reported(tmp_path):
    script = "import os; print('starting', flush=True); os.kill(os.getpid(), 9)  # tssnode"
    with pytest.raises(DaemonError, match=re.escape("the node exited:\nstarting")):
        _start_a_node_that_never_answers(tmp_path, [sys.executable, "-c", script])


def test_no_start(tmp_path):
    with pytest.raises(DaemonError, match=re.escape("no node answers at http://127.0.0.1:9")):
        ensure_running(_config(tmp_path), start=False, probe=lambda url: False)
