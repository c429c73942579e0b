"""The vault passphrase of a node (`tssnode.node.vaultkey`, `tssnode run`, `tssnode vault
rekey`): each source, the key refused in the data directory, insecure_local_key and its
warning, a wrong passphrase, rekeying and its crash windows. Real LevelDB throughout;
no passphrase or share ever appears in a log line, a message or the command output."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tssnode import launch
from tssnode.cli.node import cmd_vault
from tssnode.config import NodeConfig, render
from tssnode.node import vaultkey
from tssnode.node.vaultkey import (
    INSECURE_WARNING,
    NEW_PASSPHRASE_ENV,
    PASSPHRASE_ENV,
    VaultKeyError,
    unlock,
)
from tssnode.store import LevelStore, StoreLocked, WrongPassphrase

FAST = 10  # scrypt N = 2^10 for new stores in tests
KEY = "ab" * 16
SHARES = {0: b"SHARE-BYTES-epoch-0-\x00\x01", 1: b"SHARE-BYTES-epoch-1-\x02\x03"}
RIGHT = "right horse battery staple"
WRONG = "wrong horse battery staple"


def make_config(tmp_path: Path, **vault: Any) -> NodeConfig:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "node.toml"
    sections: dict[str, Any] = {
        "node": {"network_id": "t", "data_dir": "data"},
        "net": {"listen": "/ip4/127.0.0.1/tcp/1"},
    }
    if vault:
        sections["vault"] = vault
    path.write_text(render(sections))
    return NodeConfig.load(path)


def seal_shares(config: NodeConfig, env: dict[str, str]) -> vaultkey.OpenVault:
    opened = unlock(config, env, log2_n=FAST)
    try:
        for epoch, share in SHARES.items():
            opened.vault.put_share(KEY, epoch, share)
    finally:
        opened.close()
    return opened


def read_every_share(config: NodeConfig, env: dict[str, str]) -> None:
    opened = unlock(config, env)
    try:
        assert {e: opened.vault.get_share(KEY, e) for e in SHARES} == SHARES
    finally:
        opened.close()


def db_contents(config: NodeConfig) -> dict[bytes, bytes]:
    with LevelStore(config.data_dir / "ledger.db") as store:
        return dict(store.iterate(b""))


def assert_no_secrets(text: str | bytes, *secrets: str | bytes) -> None:
    data = text.encode() if isinstance(text, str) else text
    for secret in (*secrets, *SHARES.values(), b"SHARE-BYTES"):
        raw = secret.encode() if isinstance(secret, str) else secret
        assert raw not in data, f"a secret leaked: {raw[:6]!r}…"


@pytest.fixture(autouse=True)
def _no_ambient_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSPHRASE_ENV, raising=False)
    monkeypatch.delenv(NEW_PASSPHRASE_ENV, raising=False)


# -- where the passphrase comes from ---------------------------------------------------------


def test_the_environment_variable(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    config = make_config(tmp_path)
    opened = seal_shares(config, {PASSPHRASE_ENV: f"  {RIGHT}\n"})  # whitespace stripped
    assert opened.source == PASSPHRASE_ENV and opened.warnings == []
    read_every_share(config, {PASSPHRASE_ENV: RIGHT})
    assert not (config.data_dir / "vault.key").exists()
    with pytest.raises(VaultKeyError, match="set but empty"):
        unlock(config, {PASSPHRASE_ENV: " "})
    assert "WARNING" not in caplog.text
    assert_no_secrets(caplog.text, RIGHT)


def test_no_passphrase_is_a_clear_error_before_the_store_is_touched(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    with pytest.raises(VaultKeyError) as caught:
        unlock(config, {})
    for words in (PASSPHRASE_ENV, "passphrase_file", "passphrase_command", "insecure_local_key"):
        assert words in str(caught.value)
    assert not (config.data_dir / "ledger.db").exists()


def test_passphrase_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    secret = tmp_path / "secrets" / "node.pass"
    secret.parent.mkdir()
    secret.write_text(RIGHT + "\n")
    secret.chmod(0o600)
    config = make_config(tmp_path, passphrase_file="secrets/node.pass")
    opened = seal_shares(config, {})
    assert opened.source == f"[vault] passphrase_file {secret}" and not opened.warnings
    read_every_share(config, {})
    elsewhere = make_config(tmp_path, passphrase_file=str(tmp_path / "nope"))
    read_every_share(elsewhere, {PASSPHRASE_ENV: RIGHT})  # the environment comes first
    secret.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        read_every_share(config, {})
    assert "readable by group or others" in caplog.text
    assert_no_secrets(caplog.text, RIGHT)
    missing = make_config(tmp_path, passphrase_file="secrets/missing")
    with pytest.raises(VaultKeyError, match="does not exist"):
        unlock(missing, {})
    secret.write_text("\n \n")
    with pytest.raises(VaultKeyError, match="is empty"):
        unlock(config, {})


def test_a_passphrase_file_that_turns_out_inside_the_data_directory(tmp_path: Path) -> None:
    config = make_config(tmp_path, passphrase_file="elsewhere.pass")
    config.data_dir.mkdir()
    (config.data_dir / "pass").write_text(RIGHT)
    (tmp_path / "elsewhere.pass").symlink_to(config.data_dir / "pass")  # made after the check
    with pytest.raises(VaultKeyError, match="inside the data directory") as caught:
        unlock(config, {})
    assert_no_secrets(str(caught.value), RIGHT)
    assert not (config.data_dir / "ledger.db").exists()


def command(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_passphrase_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(NEW_PASSPHRASE_ENV, "not for the command")
    code = f"import os; assert {NEW_PASSPHRASE_ENV!r} not in os.environ; print({RIGHT!r})"
    config = make_config(tmp_path, passphrase_command=command(code))
    opened = seal_shares(config, {})
    assert opened.source.startswith("[vault] passphrase_command") and not opened.warnings
    as_string = make_config(tmp_path, passphrase_command=f'{sys.executable} -c "print({RIGHT!r})"')
    read_every_share(as_string, {})


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (f"import sys; print({WRONG!r}); sys.exit(3)", "failed with exit code 3"),
        ("print('   ')", "printed no passphrase"),
        (f"import time; print({WRONG!r}, flush=True); time.sleep(30)", "did not finish within 1 s"),
    ],
)
def test_a_failing_passphrase_command(tmp_path: Path, code: str, words: str) -> None:
    config = make_config(tmp_path, passphrase_command=command(code), command_timeout=1)
    with pytest.raises(VaultKeyError, match=words) as caught:
        unlock(config, {})
    assert_no_secrets(str(caught.value), WRONG)
    assert caught.value.__suppress_context__ or caught.value.__context__ is None
    assert not (config.data_dir / "ledger.db").exists()


def test_a_passphrase_command_that_cannot_run(tmp_path: Path) -> None:
    config = make_config(tmp_path, passphrase_command=["./no-such-program"])
    with pytest.raises(VaultKeyError, match="cannot run"):
        unlock(config, {})


# -- the key in the data directory -----------------------------------------------------------


def test_a_key_in_the_data_directory_is_refused(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    config.data_dir.mkdir()
    (config.data_dir / "vault.key").write_text(RIGHT)
    for env in ({}, {PASSPHRASE_ENV: RIGHT}):  # even when it is not the key in use
        with pytest.raises(VaultKeyError) as caught:
            unlock(config, env)
        assert str(config.data_dir / "vault.key") in str(caught.value)
        assert "insecure_local_key" in str(caught.value)
        assert_no_secrets(str(caught.value), RIGHT)
    assert not (config.data_dir / "ledger.db").exists()


def test_insecure_local_key_makes_a_key_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    config = make_config(tmp_path, insecure_local_key=True)
    opened = seal_shares(config, {})
    key = config.data_dir / "vault.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert opened.warnings == [INSECURE_WARNING]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(INSECURE_WARNING in w and str(key) in w for w in warnings)
    first = key.read_bytes()
    read_every_share(config, {})
    assert key.read_bytes() == first  # made once
    assert_no_secrets(caplog.text, first.strip())
    # the environment still comes first, and then nothing is insecure
    fresh = make_config(tmp_path / "other", insecure_local_key=True)
    assert unlock(fresh, {PASSPHRASE_ENV: RIGHT}, log2_n=FAST).warnings == []
    # a lost key file is not silently replaced
    key.unlink()
    with pytest.raises(VaultKeyError, match="is missing"):
        unlock(config, {})
    assert not key.exists()


def test_tssnode_init_writes_a_vault_key_only_when_asked(tmp_path: Path) -> None:
    from tssnode.node.datadir import init_data_dir

    info = init_data_dir(tmp_path / "a")
    assert "vault_key" not in info and not (tmp_path / "a" / "vault.key").exists()
    info = init_data_dir(tmp_path / "b", local_key=True)
    key = tmp_path / "b" / "vault.key"
    assert info["vault_key"] == str(key) and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert len(key.read_bytes().strip()) >= 32


# -- a wrong passphrase ----------------------------------------------------------------------


def test_a_wrong_passphrase_changes_nothing(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    seal_shares(config, {PASSPHRASE_ENV: RIGHT})
    before = db_contents(config)
    with pytest.raises(WrongPassphrase, match=str(config.data_dir)) as caught:
        unlock(config, {PASSPHRASE_ENV: WRONG})
    assert_no_secrets(str(caught.value), RIGHT, WRONG)
    assert db_contents(config) == before
    read_every_share(config, {PASSPHRASE_ENV: RIGHT})


def run_node(config: NodeConfig, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    base = {k: v for k, v in os.environ.items() if k not in (PASSPHRASE_ENV, NEW_PASSPHRASE_ENV)}
    return launch.run(Path(config.source), env={**base, **env}, timeout=60)


def test_tssnode_run_stops_at_a_wrong_or_missing_passphrase(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    seal_shares(config, {PASSPHRASE_ENV: RIGHT})
    before = db_contents(config)
    # no genesis file and a listen port nobody could bind: the node gets nowhere near them
    wrong = run_node(config, {PASSPHRASE_ENV: WRONG})
    assert wrong.returncode == 1
    err = wrong.stderr.decode()
    assert "tssnode run: the passphrase (or key file) does not open the secrets in" in err
    assert "Traceback" not in err and " up on " not in err + wrong.stdout.decode()
    assert_no_secrets(wrong.stdout + wrong.stderr, RIGHT, WRONG)
    missing = run_node(config, {})
    assert missing.returncode == 1
    assert "tssnode run: no vault passphrase: set TSSNODE_PASSPHRASE" in missing.stderr.decode()
    assert db_contents(config) == before
    assert not (config.data_dir / "vault.key").exists()  # `tssnode run` never makes one
    read_every_share(config, {PASSPHRASE_ENV: RIGHT})


# -- rekey -----------------------------------------------------------------------------------


def rekey(capsys: pytest.CaptureFixture[str], config: NodeConfig, *options: str) -> tuple[int, str]:
    code = cmd_vault(["rekey", "--config", config.source, *options])
    out = capsys.readouterr()
    return code, out.out + out.err


def test_rekey_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_config(tmp_path)
    seal_shares(config, {PASSPHRASE_ENV: RIGHT})
    monkeypatch.setenv(PASSPHRASE_ENV, RIGHT)
    monkeypatch.setenv(NEW_PASSPHRASE_ENV, "the new one, from the environment")
    code, out = rekey(capsys, config)
    assert code == 0, out
    assert "re-sealed 2 secret(s)" in out and f"was: {PASSPHRASE_ENV}" in out
    assert f"now: {NEW_PASSPHRASE_ENV}" in out
    assert_no_secrets(out, RIGHT, "the new one")
    read_every_share(config, {PASSPHRASE_ENV: "the new one, from the environment"})
    with pytest.raises(WrongPassphrase):
        unlock(config, {PASSPHRASE_ENV: RIGHT})


def test_rekey_from_a_file_then_a_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    old = tmp_path / "old.pass"
    old.write_text(RIGHT)
    config = make_config(tmp_path, passphrase_file=str(old))
    seal_shares(config, {})
    new = tmp_path / "new.pass"
    new.write_text("second passphrase\n")
    code, out = rekey(capsys, config, "--new-passphrase-file", str(new))
    assert code == 0, out
    assert old.read_text() == RIGHT  # the operator's own file is never touched
    read_every_share(config, {PASSPHRASE_ENV: "second passphrase"})
    monkeypatch.setenv(PASSPHRASE_ENV, "second passphrase")
    cmd = f"{sys.executable} -c \"print('third passphrase')\""
    code, out = rekey(capsys, config, "--new-passphrase-command", cmd)
    assert code == 0, out
    assert_no_secrets(out, RIGHT, "second passphrase", "third passphrase")
    read_every_share(config, {PASSPHRASE_ENV: "third passphrase"})


def test_rekey_refusals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_config(tmp_path)
    seal_shares(config, {PASSPHRASE_ENV: RIGHT})
    monkeypatch.setenv(PASSPHRASE_ENV, RIGHT)
    code, out = rekey(capsys, config)
    assert code == 1 and "give the new passphrase in one way (none given)" in out
    monkeypatch.setenv(NEW_PASSPHRASE_ENV, "new")
    (tmp_path / "new.pass").write_text("new")
    code, out = rekey(capsys, config, "--new-passphrase-file", str(tmp_path / "new.pass"))
    assert code == 1 and "and --new-passphrase-file given" in out
    monkeypatch.delenv(NEW_PASSPHRASE_ENV)
    code, out = rekey(capsys, config, "--new-local-key")
    assert code == 1 and "insecure_local_key" in out
    inside = config.data_dir / "new.pass"
    inside.write_text("inside the data directory")
    code, out = rekey(capsys, config, "--new-passphrase-file", str(inside))
    assert code == 1 and "inside the data directory" in out
    inside.unlink()
    monkeypatch.setenv(PASSPHRASE_ENV, WRONG)
    code, out = rekey(capsys, config, "--new-passphrase-file", str(tmp_path / "new.pass"))
    assert code == 1 and "does not open the secrets" in out
    assert_no_secrets(out, RIGHT, WRONG)
    read_every_share(config, {PASSPHRASE_ENV: RIGHT})


def test_rekey_refuses_while_the_node_holds_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_config(tmp_path)
    seal_shares(config, {PASSPHRASE_ENV: RIGHT})
    monkeypatch.setenv(PASSPHRASE_ENV, RIGHT)
    monkeypatch.setenv(NEW_PASSPHRASE_ENV, "new")
    holder = subprocess.Popen(  # a running node: another process holds LevelDB's lock
        [
            sys.executable,
            "-c",
            "import sys, time; from tssnode.store import LevelStore; "
            "s = LevelStore(sys.argv[1]); print('open', flush=True); time.sleep(60)",
            str(config.data_dir / "ledger.db"),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"open\n"
        with pytest.raises(StoreLocked):
            unlock(config, {PASSPHRASE_ENV: RIGHT})
        code, out = rekey(capsys, config)
        assert code == 1 and "is running" in out and "stop it first" in out
    finally:
        holder.kill()
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()
    read_every_share(config, {PASSPHRASE_ENV: RIGHT})


def test_rekey_a_local_key_to_a_new_local_key_and_to_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = make_config(tmp_path, insecure_local_key=True)
    seal_shares(config, {})
    key = config.data_dir / "vault.key"
    first = key.read_bytes()
    code, out = rekey(capsys, config, "--new-local-key")
    assert code == 0, out
    second = key.read_bytes()
    assert second != first and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert not (config.data_dir / "vault.key.new").exists()
    read_every_share(config, {})
    with pytest.raises(WrongPassphrase):
        unlock(config, {PASSPHRASE_ENV: first.decode()})
    monkeypatch.setenv(NEW_PASSPHRASE_ENV, RIGHT)
    code, out = rekey(capsys, config)
    assert code == 0 and f"removed the old key file {key}" in out
    assert not key.exists()
    assert_no_secrets(out, first.strip(), second.strip(), RIGHT)
    read_every_share(config, {PASSPHRASE_ENV: RIGHT})


def test_a_crash_after_the_batch_but_before_the_new_key_file_is_in_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(tmp_path, insecure_local_key=True)
    seal_shares(config, {})
    key, pending = config.data_dir / "vault.key", config.data_dir / "vault.key.new"
    old = key.read_bytes()
    real_replace = os.replace

    def crash_at_the_rename(src: Any, dst: Any) -> None:
        if Path(dst) == key:
            raise KeyboardInterrupt("killed between the commit and the rename")
        real_replace(src, dst)

    monkeypatch.setattr(vaultkey.os, "replace", crash_at_the_rename)
    with pytest.raises(KeyboardInterrupt):
        vaultkey.rekey(config, None, {})
    monkeypatch.setattr(vaultkey.os, "replace", real_replace)
    assert key.read_bytes() == old and pending.exists()  # the batch is in, the file is not
    new = pending.read_bytes()
    with caplog.at_level(logging.WARNING):
        read_every_share(config, {})  # the next start finishes the rename
    assert "finished an interrupted rekey" in caplog.text
    assert key.read_bytes() == new and not pending.exists()
    read_every_share(config, {})
    assert_no_secrets(caplog.text, old.strip(), new.strip())


def test_a_crash_before_the_batch_leaves_the_old_local_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_config(tmp_path, insecure_local_key=True)
    seal_shares(config, {})
    key, pending = config.data_dir / "vault.key", config.data_dir / "vault.key.new"
    old = key.read_bytes()

    def fail(*args: Any, **kwargs: Any) -> int:
        raise OSError("disk full while re-sealing")

    monkeypatch.setattr(vaultkey.sealing_mod, "rekey", fail)
    with pytest.raises(OSError, match="disk full"):
        vaultkey.rekey(config, None, {})
    assert key.read_bytes() == old and not pending.exists()  # cleaned up
    # a hard crash (no clean-up) leaves the new file behind: the old key still opens,
    # and the stale file goes
    pending.write_bytes(b"a key the batch never used\n")
    read_every_share(config, {})
    assert key.read_bytes() == old and not pending.exists()


# -- a whole node ----------------------------------------------------------------------------


def test_a_node_with_insecure_local_key_warns_in_its_log_and_status(tmp_path: Path) -> None:
    from tssnode.testing.cluster import make_cluster

    (node,) = make_cluster(tmp_path, 1, vault={"insecure_local_key": True})
    assert node.passphrase is None
    node.start()
    try:
        node.wait_api()
        with node.client() as api:
            status = api.get("/status")
            raw = api.http.get("/status").text
    finally:
        node.stop()
    assert status["warnings"] == [INSECURE_WARNING]
    log = node.log.read_text()
    assert any("WARNING" in line and INSECURE_WARNING in line for line in log.splitlines())
    key = (node.data_dir / "vault.key").read_bytes().strip()
    assert_no_secrets(log, key)
    assert_no_secrets(raw, key)
