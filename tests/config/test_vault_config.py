"""[vault] in the node config: where the vault passphrase comes from, each bad value a
`ConfigError` naming its key, and a passphrase file inside the data directory refused
unless insecure_local_key."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tssnode.config import ConfigError, NodeConfig, VaultConfig, render

BASE = """
[node]
network_id = "n"
data_dir = "data/node1"

[net]
listen = "/ip4/127.0.0.1/tcp/4001"
"""


def parse(vault: str, base: Path = Path("/etc/tss")) -> NodeConfig:
    return NodeConfig.parse(BASE + "[vault]\n" + vault, source="node.toml", base_dir=base)


def test_no_vault_section_takes_the_defaults() -> None:
    cfg = NodeConfig.parse(BASE, base_dir=Path("/etc/tss"))
    assert cfg.vault == VaultConfig()
    assert cfg.vault.passphrase_file is None and cfg.vault.passphrase_command is None
    assert cfg.vault.insecure_local_key is False and cfg.vault.command_timeout == 30.0


def test_passphrase_file_is_relative_to_the_config_file() -> None:
    cfg = parse('passphrase_file = "../secrets/node1.pass"')
    assert cfg.vault.passphrase_file == Path("/etc/tss/../secrets/node1.pass")
    assert parse('passphrase_file = "/run/pass"').vault.passphrase_file == Path("/run/pass")


def test_passphrase_command_as_a_list_or_a_string() -> None:
    cfg = parse('passphrase_command = ["pass", "show", "tss node/1"]\ncommand_timeout = 5')
    assert cfg.vault.passphrase_command == ("pass", "show", "tss node/1")
    assert cfg.vault.command_timeout == 5.0
    cfg = parse("passphrase_command = \"pass show 'tss node/1'\"")
    assert cfg.vault.passphrase_command == ("pass", "show", "tss node/1")
    # a relative program path is relative to the config file; a bare name is looked up
    cfg = parse('passphrase_command = "./get-pass --node 1"')
    assert cfg.vault.passphrase_command == ("/etc/tss/get-pass", "--node", "1")


def test_insecure_local_key_allows_a_file_in_the_data_directory() -> None:
    cfg = parse('insecure_local_key = true\npassphrase_file = "data/node1/vault.key"')
    assert cfg.vault.insecure_local_key
    assert cfg.vault.passphrase_file == Path("/etc/tss/data/node1/vault.key")


BAD = [
    ('passphrase_file = ""', "vault.passphrase_file", "empty"),
    ("passphrase_file = 3", "vault.passphrase_file", "string"),
    ('passphrase_file = "data/node1/vault.key"', "vault.passphrase_file", "inside the data"),
    ('passphrase_file = "data/node1"', "vault.passphrase_file", "inside the data"),
    ('passphrase_file = "/etc/tss/data/node1/x/../k"', "vault.passphrase_file", "inside"),
    ("passphrase_command = []", "vault.passphrase_command", "program"),
    ('passphrase_command = ""', "vault.passphrase_command", "program"),
    ('passphrase_command = "pass show \'x"', "vault.passphrase_command", "split"),
    ('passphrase_command = ["pass", 3]', "vault.passphrase_command[1]", "string"),
    ("passphrase_command = 3", "vault.passphrase_command", "list of strings"),
    (
        'passphrase_file = "/run/p"\npassphrase_command = "cat /run/p"',
        "vault.passphrase_command",
        "not both",
    ),
    ("command_timeout = 0", "vault.command_timeout", "more than"),
    ('command_timeout = "5s"', "vault.command_timeout", "seconds"),
    ('insecure_local_key = "yes"', "vault.insecure_local_key", "true or false"),
    ("insecure_local_key = 1", "vault.insecure_local_key", "true or false"),
    ("passphrase = 'hunter2'", "vault.passphrase", "unknown"),
]


@pytest.mark.parametrize(("text", "key", "words"), BAD)
def test_every_bad_vault_value_is_named(text: str, key: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    assert caught.value.key == key
    assert words in caught.value.problem
    assert str(caught.value).startswith(f"node.toml: {key}: ")


def test_a_link_into_the_data_directory_is_inside_it(tmp_path: Path) -> None:
    data = tmp_path / "data" / "node1"
    data.mkdir(parents=True)
    (data / "vault.key").write_text("x" * 20)
    (tmp_path / "outside.key").symlink_to(data / "vault.key")
    with pytest.raises(ConfigError, match="inside the data directory"):
        parse('passphrase_file = "outside.key"', base=tmp_path)
    # and a link in the data directory to a file elsewhere is not
    (tmp_path / "real.key").write_text("y" * 20)
    (data / "link.key").symlink_to(tmp_path / "real.key")
    cfg = parse('passphrase_file = "data/node1/link.key"', base=tmp_path)
    assert cfg.vault.passphrase_file == data / "link.key"


def test_the_local_configs_keep_their_key_in_the_data_directory() -> None:
    root = Path(__file__).resolve().parents[2]
    for path in sorted((root / "configs" / "local").glob("node*.toml")):
        assert NodeConfig.load(path).vault.insecure_local_key, path


def test_rendered_vault_section_parses_back(tmp_path: Path) -> None:
    vault = {
        "passphrase_command": [sys.executable, "-c", "print('x')"],
        "command_timeout": 2.5,
        "insecure_local_key": False,
    }
    text = render(
        {
            "node": {"network_id": "n", "data_dir": tmp_path / "d"},
            "net": {"listen": "/ip4/127.0.0.1/tcp/1"},
            "vault": vault,
        }
    )
    cfg = NodeConfig.parse(text, base_dir=tmp_path)
    assert cfg.vault == VaultConfig(
        passphrase_command=(sys.executable, "-c", "print('x')"), command_timeout=2.5
    )
