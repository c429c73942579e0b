"""`tssnode console`: argument handling, and finding or starting the node of a config
(the daemon part runs real processes, but never a node: the command is injected)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tui import cli
from tui.daemon import DaemonError, ensure_running, node_command, read_config, start_detached


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
    started: list[Path] = []
    config = ensure_running(
        _config(tmp_path), probe=lambda url: True, command=lambda p: started.append(p) or []
    )
    assert config.api_url == "http://127.0.0.1:9" and started == []


def test_the_node_command():
    assert node_command(Path("n.toml")) == [
        sys.executable,
        "-m",
        "tssnode.cli",
        "run",
        "--config",
        "n.toml",
    ]


def test_starts_the_node_detached_and_waits_for_api_and_token(tmp_path):
    token = tmp_path / "data" / "api.token"
    # stands in for `tssnode run`: writes the token, then stays up
    script = f"import pathlib, time; pathlib.Path({str(token)!r}).write_text('t'); time.sleep(30)"
    started: list[subprocess.Popen[bytes]] = []
    checks: list[str] = []

    def spawn(command, log_file):
        started.append(start_detached(command, log_file))
        return started[-1]

    def probe(url: str) -> bool:
        checks.append(url)
        return token.exists() and len(checks) > 2

    try:
        config = ensure_running(
            _config(tmp_path),
            probe=probe,
            command=lambda p: [sys.executable, "-c", script],
            spawn=spawn,
            say=lambda text: None,
            timeout=20,
        )
        assert config.token_file.read_text() == "t"
        assert (tmp_path / "data" / "node.log").exists()
        assert (tmp_path / "data" / "node.pid").read_text() == str(started[0].pid)
        assert started[0].poll() is None  # left running for the console
    finally:
        for proc in started:
            proc.kill()
            proc.wait()


def test_a_node_that_exits_is_reported_with_its_log(tmp_path):
    script = "import sys; print('genesis file not found'); sys.exit(3)"
    with pytest.raises(DaemonError, match=re.escape("exited with code 3:\ngenesis file not")):
        ensure_running(
            _config(tmp_path),
            probe=lambda url: False,
            say=lambda text: None,
            command=lambda p: [sys.executable, "-c", script],
            timeout=20,
        )


def test_no_start(tmp_path):
    with pytest.raises(DaemonError, match=re.escape("no node answers at http://127.0.0.1:9")):
        ensure_running(_config(tmp_path), start=False, probe=lambda url: False)
