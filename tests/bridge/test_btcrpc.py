"""The RPC client and a server that closes idle connections, as bitcoind does after
-rpcservertimeout (here the regtest service's, set to 1 s): a read is sent again on a new
connection, a call that changes something never twice, and an idle connection is not
used again."""

from __future__ import annotations

import select
import time

import pytest
from bitcoin.rpc import JSONRPCError, RawProxy

from tssnode.bridge import btcrpc
from tssnode.bridge.btcrpc import CLOSED, Rpc
from tssnode.testing.regtest import running_regtest


def _closed_by_the_server(proxy: RawProxy, within: float = 20.0) -> None:
    """Wait until the server has closed the proxy's idle connection (EOF on its socket)."""
    sock = proxy._BaseProxy__conn.sock  # (python-bitcoinlib's one connection)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        readable, _, _ = select.select([sock], [], [], 0.2)
        if readable:
            return
    raise AssertionError("the server kept the idle connection")


def test_a_closed_connection_is_replaced_and_only_reads_are_sent_again(tmp_path, monkeypatch):
    monkeypatch.setattr(btcrpc, "IDLE_REUSE", 3600.0)  # (here: see the server close it)
    with running_regtest(tmp_path, args=["--rpcservertimeout", "1"]) as btc:
        raw = RawProxy(service_url=btc.service_url, timeout=10)
        rpc = Rpc(btc.service_url, timeout=10)
        try:
            assert raw.getblockcount() == rpc.getblockcount() == 0
            _closed_by_the_server(raw)
            _closed_by_the_server(rpc._proxy)
            with pytest.raises(CLOSED):  # python-bitcoinlib's proxy alone does not recover
                raw.getblockcount()
            assert rpc.getblockcount() == 0 and rpc.reconnects == 1  # a read: sent again
            address = rpc.getnewaddress()
            _closed_by_the_server(rpc._proxy)
            with pytest.raises(CLOSED):  # mining changes the chain: never sent twice
                rpc.generatetoaddress(1, address)
            assert rpc.getblockcount() == 0 and rpc.reconnects == 1
            assert len(rpc.generatetoaddress(2, address)) == 2 and rpc.getblockcount() == 2
            with pytest.raises(JSONRPCError):  # an error the server answered: as it is
                rpc.getblockhash(99)
            assert rpc.reconnects == 1
        finally:
            raw.close()
            rpc.close()


def test_an_idle_connection_is_not_used_again(tmp_path, monkeypatch):
    now = [0.0]
    monkeypatch.setattr(btcrpc, "IDLE_REUSE", 5.0)
    with running_regtest(tmp_path, args=["--rpcservertimeout", "1"]) as btc:
        rpc = Rpc(btc.service_url, timeout=10, clock=lambda: now[0])
        try:
            address = rpc.getnewaddress()
            _closed_by_the_server(rpc._proxy)
            now[0] += 6.0  # idle past IDLE_REUSE: a new connection before the call
            assert len(rpc.generatetoaddress(1, address)) == 1 and rpc.reconnects == 0
        finally:
            rpc.close()
