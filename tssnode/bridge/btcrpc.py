"""Bitcoin Core's JSON-RPC through python-bitcoinlib's `RawProxy`, over a connection the
server may close while it is idle.

bitcoind closes an HTTP connection idle for `-rpcservertimeout` (30 s by default), and
so does the project's regtest service. python-bitcoinlib's proxy keeps its one connection
and never opens another, so the first call after a quiet half-minute fails (a broken
pipe, a reset, or a connection closed without an answer), and every call after it too.
`Rpc` then opens a new connection and sends the call once more. It does so only for
those errors, which mean the server never read the call (it had closed the connection
before it arrived); an error the server answered (`JSONRPCError`), a timeout, or a
refused connection is raised as it is.
"""

from __future__ import annotations

import http.client
from typing import Any

#: A connection found closed before the server read the call: send it again, once, on a
#: new connection.
CLOSED = (BrokenPipeError, ConnectionResetError, http.client.CannotSendRequest)


class Rpc:
    """`rpc.getblockcount()`, `rpc.sendrawtransaction(hex)`, ...: any RPC method by name,
    as `RawProxy` offers them. One connection, used from one thread at a time."""

    def __init__(self, service_url: str, timeout: float = 30.0) -> None:
        self.service_url, self.timeout = service_url, timeout
        self._proxy: Any = None
        self.reconnects = 0

    def call(self, method: str, *args: Any) -> Any:
        for attempt in (1, 2):
            proxy = self._proxy if self._proxy is not None else self._connect()
            try:
                return getattr(proxy, method)(*args)
            except CLOSED:  # (http.client.RemoteDisconnected is a ConnectionResetError)
                self.close()
                if attempt == 2:
                    raise
                self.reconnects += 1
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
