"""Fixtures: an in-process node (fast: policy and chain tests) and one real `tssnode
regtest` subprocess per module, spoken to through python-bitcoinlib's RawProxy exactly as
a client speaks to bitcoind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from bitcoin.rpc import RawProxy

from tssnode.regtest.node import RegtestNode, Settings
from tssnode.testing.regtest import Regtest, running_regtest


@pytest.fixture
def node() -> Iterator[RegtestNode]:
    node = RegtestNode(Settings())
    try:
        yield node
    finally:
        node.close()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Regtest]:
    with running_regtest(tmp_path_factory.mktemp("regtest")) as running:
        yield running


@pytest.fixture
def rpc(service: Regtest) -> Iterator[RawProxy]:
    proxy = RawProxy(service_url=service.service_url, timeout=60)
    try:
        yield proxy
    finally:
        proxy.close()
