"""[bridge.bitcoin] in the node config: the Bitcoin node a validator watches, its
credentials (a cookie file, or a user and a password file), each bad value a
`ConfigError` naming its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.config.test_vault_config import BASE
from tssnode.config import BitcoinRpcConfig, ConfigError, EvmRpcConfig, NodeConfig


def parse(text: str) -> NodeConfig:
    return NodeConfig.parse(
        BASE + "[bridge.bitcoin]\n" + text, source="node.toml", base_dir=Path("/etc/tss")
    )


def test_absent_is_off_and_a_url_with_a_cookie_file_is_on() -> None:
    off = NodeConfig.parse(BASE, base_dir=Path("/etc/tss")).bridge.bitcoin
    assert off == BitcoinRpcConfig() and not off.enabled
    on = parse('url = "http://127.0.0.1:18443"\ncookie_file = "btc/.cookie"\npoll = 2').bridge
    assert on.bitcoin.enabled and on.bitcoin.url == "http://127.0.0.1:18443"
    assert on.bitcoin.cookie_file == Path("/etc/tss/btc/.cookie") and on.bitcoin.poll == 2.0
    user = parse('url = "https://btc.example/"\nuser = "tss"\npassword_file = "/run/p"')
    assert user.bridge.bitcoin.user == "tss"
    assert user.bridge.bitcoin.password_file == Path("/run/p")


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ('url = "ftp://h"', "bridge.bitcoin.url", "http"),
        ('url = "http://u:p@h:1"', "bridge.bitcoin.url", "without credentials"),
        ('url = "http://h"\nuser = "u"', "bridge.bitcoin.user", "password_file"),
        (
            'url = "http://h"\ncookie_file = "c"\nuser = "u"\npassword_file = "p"',
            "bridge.bitcoin.cookie_file",
            "not both",
        ),
        ('url = "http://h"\npoll = 0', "bridge.bitcoin.poll", "more than"),
        ('url = "http://h"\npassword = "hunter2"', "bridge.bitcoin.password", "unknown"),
    ],
)
def test_every_bad_bitcoin_value_is_named(text: str, key: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    assert caught.value.key == key and words in caught.value.problem


def test_an_evm_node_is_optional_and_its_bad_values_are_named() -> None:
    base = BASE + '[bridge.bitcoin]\nurl = "http://127.0.0.1:18443"\n'
    off = NodeConfig.parse(base, base_dir=Path("/etc/tss")).bridge.evm
    assert off == EvmRpcConfig() and not off.enabled
    on = NodeConfig.parse(
        base + '[bridge.evm]\nurl = "http://127.0.0.1:8545"\npoll = 1.5\n', base_dir=Path("/")
    ).bridge.evm
    assert on.enabled and on.url == "http://127.0.0.1:8545" and on.poll == 1.5
    for text, key, words in [
        ('url = "ws://h"', "bridge.evm.url", "http"),
        ('url = "http://h"\ntimeout = -1', "bridge.evm.timeout", "more than"),
        ('url = "http://h"\nkey = "0x01"', "bridge.evm.key", "unknown"),
    ]:
        with pytest.raises(ConfigError) as caught:
            NodeConfig.parse(base + "[bridge.evm]\n" + text, base_dir=Path("/"))
        assert caught.value.key == key and words in caught.value.problem
