"""Bitcoin Core's JSON-RPC through python-bitcoinlib's `RawProxy`, over a connection the
server may close while it is idle.

bitcoind closes an HTTP connection idle for `-rpcservertimeout` (30 s by default), and
so does the project's regtest service. python-bitcoinlib's proxy keeps its one connection
and never opens another, so the first call after a quiet half-minute fails, and every
call after it too. `Rpc` avoids that and recovers from it, without ever sending twice a
call that changes something:

- a connection idle for `IDLE_REUSE` seconds (under bitcoind's default timeout) is not
  used again: the call goes out on a new one;
- a call that fails because the connection turned out closed is sent once more on a new
  connection only when the call cannot have taken effect: its request was never sent
  whole (`http.client.CannotSendRequest`), or the method only reads (`READ_ONLY`). A
  closed connection seen after the request went out (a reset, a close without an answer)
  may follow a call the server ran (it restarted, say), so for any other method the error
  is raised; an error the server answered (`JSONRPCError`) is raised as it is.
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable
from typing import Any

#: A connection found closed (the call is sent again only as the module docstring says).
CLOSED = (BrokenPipeError, ConnectionResetError, http.client.CannotSendRequest)
#: Seconds after which an idle connection is replaced before a call (bitcoind: 30 s).
IDLE_REUSE = 15.0
#: Methods that change nothing: sending one twice is harmless.
READ_ONLY = frozenset({
    "getbestblockhash", "getblock", "getblockchaininfo", "getblockcount", "getblockhash",
    "getblockheader", "getmempoolentry", "getmempoolinfo", "getnetworkinfo",
    "getrawmempool", "getrawtransaction", "gettxout", "estimatesmartfee",
    "testmempoolaccept", "getbalance", "getwalletinfo", "uptime",
})  # fmt: skip


class Rpc:
    """`rpc.getblockcount()`, `rpc.sendrawtransaction(hex)`, ...: any RPC method by name,
    as `RawProxy` offers them. One connection, used from one thread at a time."""

    def __init__(
        self, service_url: str, timeout: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.service_url, self.timeout, self.clock = service_url, timeout, clock
        self._proxy: Any = None
        self._last_use = 0.0
        self.reconnects = 0

    def call(self, method: str, *args: Any) -> Any:
        if self._proxy is not None and self.clock() - self._last_use > IDLE_REUSE:
            self.close()  # idle long enough that the server may have closed it
        for attempt in (1, 2):
            proxy = self._proxy if self._proxy is not None else self._connect()
            try:
                return getattr(proxy, method)(*args)
            except CLOSED as exc:  # (http.client.RemoteDisconnected is a ConnectionResetError)
                self.close()
                unsent = isinstance(exc, http.client.CannotSendRequest)
                if attempt == 2 or not (unsent or method in READ_ONLY):
                    raise
                self.reconnects += 1
            finally:
                self._last_use = self.clock()
        raise AssertionError("unreachable")

    def __getattr__(self, method: str) -> Any:
        if method.startswith("_"):
            raise AttributeError(method)
        return lambda *args: self.call(method, *args)

    def close(self) -> None:
        proxy, self._proxy = self._proxy, None
        if proxy is not None:
            proxy.close()

    def _connect(self) -> Any:
        from bitcoin.rpc import RawProxy  # (imported here: it reads no config at import)

        self._proxy = RawProxy(service_url=self.service_url, timeout=self.timeout)
        return self._proxy
