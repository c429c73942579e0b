"""The API client commands (`tssnode sign|keygen|status|keys|signatures|blocks|validators`)
against the console tests' fake node API: what reaches stdout and stderr, `--json`,
progress, ordering, readable output, config discovery, help texts (issue 14)."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
from pathlib import Path

import pytest
from coincurve import PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from tssnode import cli
from tssnode.cli import client, cluster, configs, simulate, verify
from tssnode.cli import node as node_cli
from tssnode.cli.common import CommandError
from tssnode.testing.fakecli import ACTIVE_KEY, PENDING_KEY, SyncNode, parse_json
from tssnode.testing.fakenode import TOKEN


class Tty(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> SyncNode:
    node = SyncNode()
    node.install(monkeypatch)
    return node


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def run_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, str, str]:
    tty = Tty()
    monkeypatch.setattr("sys.stderr", tty)
    code = cli.main(list(argv))
    return code, capsys.readouterr().out, tty.getvalue()


def assert_verifies(sig: dict[str, str], public_key: str, digest: bytes) -> None:
    der = encode_dss_signature(int(sig["r"], 16), int(sig["s"], 16))
    assert PublicKey(bytes.fromhex(public_key)).verify(der, digest, hasher=None)


def sign_args(fake: SyncNode, tmp_path: Path, *extra: str) -> list[str]:
    return ["sign", *fake.api_args(tmp_path), "--key-id", ACTIVE_KEY, "--message", "hello", *extra]


# -- sign: stdout is the result, progress is on stderr -----------------------------------------


def test_sign_prints_only_the_result_and_no_progress_into_a_pipe(fake, tmp_path, capsys):
    code, out, err = run(capsys, *sign_args(fake, tmp_path))
    assert code == 0, err
    assert err == ""  # stderr is not a terminal here: no progress at all
    assert "waiting" not in out and "\r" not in out and "\x1b" not in out
    fields = dict(re.split(r"\s{2,}", line, maxsplit=1) for line in out.splitlines()[:8])
    sig_id = fields["signature id"]
    assert re.fullmatch(r"[0-9a-f]{64}", sig_id), sig_id  # the id (a tx hash), nothing glued to it
    assert fields["status"] == "done"
    assert_verifies(
        fields, fake.node.keys[ACTIVE_KEY]["public_key"], hashlib.sha256(b"hello").digest()
    )


def test_sign_json_is_exactly_one_document(fake, tmp_path, capsys):
    code, out, err = run(capsys, *sign_args(fake, tmp_path, "--json"))
    assert code == 0 and err == ""
    sig = parse_json(out)
    assert sig["status"] == "done" and sig["digest"] == hashlib.sha256(b"hello").hexdigest()
    assert_verifies(
        sig, fake.node.keys[ACTIVE_KEY]["public_key"], hashlib.sha256(b"hello").digest()
    )


def test_progress_goes_to_a_terminal_stderr_and_says_what_it_waits_for(
    fake, tmp_path, capsys, monkeypatch
):
    code, out, err = run_on_a_terminal(monkeypatch, capsys, *sign_args(fake, tmp_path, "--json"))
    assert code == 0
    sig = parse_json(out)  # stdout untouched by the progress line
    short_id = sig["signature_id"][:12]
    lines = [line for line in err.split("\r\x1b[K") if line]
    assert lines, err
    assert all(line.startswith(("| ", "/ ", "- ", "\\ ")) for line in lines)
    assert f"waiting for signature {short_id}…: the ledger has not ordered the request yet" in err
    # the session the node runs for it: phase, round, and who it waits for (party 2 of the
    # key, by peer id)
    party2 = fake.node.keys[ACTIVE_KEY]["parties"][1]
    assert f"sign round 1 of 1, waiting for {party2[:8]}…{party2[-6:]}" in err
    assert err.endswith("\r\x1b[K")  # the line is wiped before the result is printed


def test_keygen_progress_names_the_phase(fake, tmp_path, capsys, monkeypatch):
    args = ["keygen", *fake.api_args(tmp_path), "--threshold", "1", "--json"]
    code, out, err = run_on_a_terminal(monkeypatch, capsys, *args)
    assert code == 0
    key = parse_json(out)
    assert key["status"] == "active" and key["threshold"] == 1
    assert "keygen round 1 of " in err


def test_a_failed_signature_is_printed_and_exits_1(tmp_path, capsys, monkeypatch):
    fake = SyncNode(fail="Π^enc proof of party 4 does not verify")
    fake.install(monkeypatch)
    code, out, err = run(capsys, *sign_args(fake, tmp_path, "--json"))
    assert code == 1
    assert parse_json(out)["status"] == "failed"
    assert err.startswith("tssnode sign: the signature failed: Π^enc proof of party 4")
    assert "Traceback" not in err


def test_a_refused_request_is_one_clear_line(fake, tmp_path, capsys):
    args = ["sign", *fake.api_args(tmp_path), "--key-id", PENDING_KEY, "--message", "x"]
    code, out, err = run(capsys, *args)
    assert code == 1 and out == ""
    assert err == f"tssnode sign: key {PENDING_KEY} is pending (HTTP 409)\n"


def test_no_wait_prints_the_accepted_request(fake, tmp_path, capsys):
    code, out, err = run(capsys, *sign_args(fake, tmp_path, "--no-wait", "--json"))
    assert code == 0 and err == ""
    accepted = parse_json(out)
    assert set(accepted) == {"signature_id", "tx", "digest"}


def test_a_node_that_does_not_answer(tmp_path, capsys):
    token = tmp_path / "api.token"
    token.write_text("s3cret-t0ken-value\n")
    args = ["status", "--api", "http://127.0.0.1:9", "--token-file", str(token)]
    code, out, err = run(capsys, *args)
    assert code == 1 and out == ""
    assert err.startswith("tssnode status: no node answers at http://127.0.0.1:9")
    assert "s3cret" not in err  # the token is never printed


# -- keygen --parties ----------------------------------------------------------------------------


def test_keygen_parties_are_peer_ids(fake, tmp_path, capsys):
    ids = [v["peer_id"] for v in fake.node.validators]
    args = ["keygen", *fake.api_args(tmp_path), "--threshold", "1", "--no-wait", "--json"]
    code, _, err = run(capsys, *args, "--parties", f"{ids[0]},{ids[1]}", ids[2])
    assert code == 0, err
    body = next(b for m, p, b in fake.node.requests if p == "/keygen")
    assert body == {"threshold": 1, "parties": ids[:3]}
    helps = {a.dest: a.help for a in client.parser_client("keygen")._actions}
    assert "peer id" in helps["parties"] and "tssnode validators" in helps["parties"]


# -- listings --------------------------------------------------------------------------------------


def test_blocks_are_listed_newest_first(fake, tmp_path, capsys):
    code, out, _ = run(capsys, "blocks", *fake.api_args(tmp_path), "--limit", "5")
    assert code == 0
    heights = [int(line.split()[0]) for line in out.splitlines()[1:]]
    assert heights == [12, 11, 10, 9, 8]
    code, out, _ = run(capsys, "blocks", *fake.api_args(tmp_path), "--json")
    assert [b["height"] for b in parse_json(out)] == list(range(12, 0, -1))
    code, out, _ = run(capsys, "blocks", *fake.api_args(tmp_path), "--from", "3", "--limit", "3")
    assert [int(line.split()[0]) for line in out.splitlines()[1:]] == [5, 4, 3]


def test_signatures_are_listed_newest_first(fake, tmp_path, capsys):
    newest_first = fake.add_sign_blocks()
    code, out, _ = run(capsys, "signatures", *fake.api_args(tmp_path))
    assert code == 0
    listed = [line.split()[0] for line in out.splitlines()[1:]]
    assert listed == newest_first
    code, out, _ = run(capsys, "signatures", *fake.api_args(tmp_path), "--json", "--limit", "2")
    assert [s["signature_id"] for s in parse_json(out)] == newest_first[:2]
    code, out, _ = run(capsys, "signatures", *fake.api_args(tmp_path), "--key-id", ACTIVE_KEY)
    mine = [s for s in newest_first if fake.node.signatures[s]["key_id"] == ACTIVE_KEY]
    assert [line.split()[0] for line in out.splitlines()[1:]] == mine
    one = newest_first[-1]
    code, out, _ = run(capsys, "signatures", *fake.api_args(tmp_path), one)
    assert f"signature id  {one}" in out


def test_keys_list_and_one_key(fake, tmp_path, capsys):
    code, out, _ = run(capsys, "keys", *fake.api_args(tmp_path))
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == [
        "KEY",
        "ID",
        "STATUS",
        "THRESHOLD",
        "EPOCH",
        "PUBLIC",
        "KEY",
        "PRESIGS",
        "HEIGHT",
    ]
    row = next(r for r in rows if r.startswith(ACTIVE_KEY))
    public = fake.node.keys[ACTIVE_KEY]["public_key"]
    assert "active" in row and "2 (any 3 of 4)" in row and f"{public[:10]}…{public[-8:]}" in row
    assert rows[0].startswith(PENDING_KEY)  # pending requests first, then the newest keys
    code, out, _ = run(capsys, "keys", *fake.api_args(tmp_path), ACTIVE_KEY)
    assert "threshold      2 (any 3 of 4 parties sign)" in out
    code, out, err = run(capsys, "keys", *fake.api_args(tmp_path), "ab" * 16)
    assert code == 1 and err == f"tssnode keys: unknown key id {'ab' * 16}\n"


PYTHON_OR_JSON = re.compile(r"\bNone\b|\bTrue\b|\bFalse\b|[{}\[\]]|'|\"|\bnull\b")


def test_readable_output_has_no_python_or_json_notation(fake, tmp_path, capsys):
    fake.node.status.update(
        liveness=None,
        warnings=[],
        stalled=False,
        below_quorum=False,
        last_block_age_s=3.4,
        api_refused={"rate limit": 0},
        # nested objects and lists, in the node's own shapes
        admission={
            "open": False,
            "validators": 4,
            "followers": 1,
            "joiners": 0,
            "newcomers": ["12D3KooWNewcomer"],
            "newcomer_slots": 4,
            "newcomer_seconds": 60.0,
            "refused_at_handshake": 2,
            "refused_peers": 1,
            "drops": {"not a validator": 2},
        },
        buffers={"early messages": {"used": 3, "limit": 256, "evicted": 0}},
    )
    fake.add_sign_blocks()
    api = fake.api_args(tmp_path)
    sig_id = next(iter(fake.node.signatures))
    for argv in (
        ["status"],
        ["validators"],
        ["keys"],
        ["keys", ACTIVE_KEY],
        ["keys", PENDING_KEY],
        ["blocks"],
        ["signatures"],
        ["signatures", sig_id],
        ["sign", "--key-id", ACTIVE_KEY, "--message", "hi"],
        ["keygen", "--threshold", "1"],
    ):
        code, out, err = run(capsys, argv[0], *api, *argv[1:])
        assert code == 0, (argv, err)
        assert not PYTHON_OR_JSON.search(out), (argv, PYTHON_OR_JSON.search(out), out)
    code, out, _ = run(capsys, "status", *api)
    assert "this node is primary  no" in out
    assert re.search(r"^last block\s+3.4 s ago$", out, re.M)
    assert re.search(r"^liveness\s+-$", out, re.M)
    assert re.search(r"^API refused \(429\)\s+rate limit 0$", out, re.M)


# -- finding the node's config ------------------------------------------------------------------


def write_config(path: Path, port: int = 3001) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        '[node]\nnetwork_id = "t"\ndata_dir = "data"\n'
        '[net]\nlisten = "/ip4/127.0.0.1/tcp/4999"\n'
        f'[api]\nlisten = "127.0.0.1:{port}"\n'
    )
    (path.parent / "data").mkdir(exist_ok=True)
    (path.parent / "data" / "api.token").write_text(TOKEN + "\n")
    return path


def test_config_discovery_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(configs.CONFIG_ENV, raising=False)
    with pytest.raises(CommandError) as none:
        configs.find_config(None)
    assert none.value.code == 2
    assert configs.CONFIG_ENV in none.value.message and "tssnode.toml" in none.value.message
    local = write_config(tmp_path / "tssnode.toml")
    assert configs.find_config(None) == Path("tssnode.toml")
    from_env = write_config(tmp_path / "env" / "node.toml")
    monkeypatch.setenv(configs.CONFIG_ENV, str(from_env))
    assert configs.find_config(None) == from_env  # the environment before ./tssnode.toml
    given = write_config(tmp_path / "given" / "node.toml")
    assert configs.find_config(given) == given  # --config before both
    monkeypatch.setenv(configs.CONFIG_ENV, str(tmp_path / "missing.toml"))
    with pytest.raises(CommandError, match=r"TSSNODE_CONFIG=.*missing\.toml: no such"):
        configs.find_config(None)  # a wrong name is an error, not a silent fallback
    assert local.exists()


def test_client_commands_find_the_config(fake, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(configs.CONFIG_ENV, raising=False)
    code, out, err = run(capsys, "status")
    assert code == 2 and out == ""
    assert err.startswith("tssnode status: no node config: give --config FILE, set TSSNODE_CONFIG")
    write_config(tmp_path / "tssnode.toml")
    code, out, err = run(capsys, "status")
    assert code == 0, err
    assert fake.node.status["peer_id"] in out
    monkeypatch.setenv(configs.CONFIG_ENV, str(write_config(tmp_path / "n2" / "n.toml", 3002)))
    code, out, err = run(capsys, "status")
    assert code == 1  # the fake answers at :3001 only; this config says :3002
    assert "http://127.0.0.1:3002" in err and "http://http" not in err


def test_api_url_has_one_scheme(tmp_path):
    from tssnode.config import NodeConfig

    cfg = NodeConfig.load(write_config(tmp_path / "node.toml", 3003))
    assert configs.api_url(cfg) == "http://127.0.0.1:3003"


# -- help ----------------------------------------------------------------------------------------


def parsers() -> dict[str, argparse.ArgumentParser]:
    out = {
        "init": node_cli.parser_init(),
        "run": node_cli.parser_run(),
        "vault": node_cli.parser_vault(),
        "cluster": cluster.parser_cluster(),
        "verify": verify.parser_verify(),
        "simulate": simulate._parser("tssnode simulate"),
        "demo": simulate._parser("tssnode demo"),
    }
    for name in ("status", "validators", "keys", "keygen", "sign", "signatures", "blocks"):
        out[name] = client.parser_client(name)
    return out


@pytest.mark.parametrize("name", sorted(parsers()))
def test_every_option_has_help(name):
    ap = parsers()[name]
    assert ap.description, name
    for action in ap._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help and action.help.strip(), (
            f"tssnode {name}: {action.option_strings or action.dest}"
        )


def test_tssnode_help_lists_every_command(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    listed = re.findall(r"^  (\S+)\s", out, re.M)
    assert sorted(listed) == sorted(cli.COMMANDS)
    assert len(listed) == len(set(listed))
    assert "demo" in listed and "verify" in listed and "signatures" in listed
    code, out, err = run(capsys)
    assert code == 2 and "usage: tssnode COMMAND" in err
    code, out, _ = run(capsys, "bench", "--help")
    assert code == 0 and "crypto" in out


def test_json_output_of_status_is_one_document(fake, tmp_path, capsys):
    code, out, _ = run(capsys, "status", *fake.api_args(tmp_path), "--json")
    assert code == 0
    assert parse_json(out)["height"] == fake.node.status["height"]
    assert json.dumps(parse_json(out))  # plain JSON types
