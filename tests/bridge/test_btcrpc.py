"""The RPC client survives a connection the server closed while it was idle, as bitcoind
does after -rpcservertimeout (here the regtest service's, set to 1 s)."""

from __future__ import annotations

import time

import pytest
from bitcoin.rpc import JSONRPCError, RawProxy

from tssnode.bridge.btcrpc import CLOSED, Rpc
from tssnode.testing.regtest import running_regtest


def test_a_call_after_the_server_closed_an_idle_connection_is_sent_again(tmp_path):
    with running_regtest(tmp_path, args=["--rpcservertimeout", "1"]) as btc:
        raw = RawProxy(service_url=btc.service_url, timeout=10)
        rpc = Rpc(btc.service_url, timeout=10)
        try:
            assert raw.getblockcount() == rpc.getblockcount() == 0
            time.sleep(2.5)  # both connections idle past the server's timeout: closed
            with pytest.raises(CLOSED):  # python-bitcoinlib's proxy alone does not recover
                raw.getblockcount()
            assert rpc.getblockcount() == 0 and rpc.reconnects == 1
            address = rpc.getnewaddress()
            assert len(rpc.generatetoaddress(2, address)) == 2 and rpc.getblockcount() == 2
            # an error the server answered is raised as it is, not sent again
            with pytest.raises(JSONRPCError):
                rpc.getblockhash(99)
            assert rpc.reconnects == 1
        finally:
            raw.close()
            rpc.close()
