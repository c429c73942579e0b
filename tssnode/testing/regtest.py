"""A throw-away regtest chain (`tssnode regtest`) as a real subprocess, for tests.

    with running_regtest(tmp_path) as (url, auth, process):
        rpc = bitcoin.rpc.RawProxy(service_url=service_url(url, auth))

The launcher is the command line's (`tssnode.cli.btcregtest`), since `tssnode cluster up
--bridge` and the bridge demo start the service too; the tests use it from here. It takes
`--port 0`, reads the port from the line the service prints when it serves and the
credentials from the cookie file it writes, and stops the service on exit.
"""

from __future__ import annotations

from tssnode.cli.btcregtest import (
    START_TIMEOUT,
    Regtest,
    RegtestStartError,
    running_regtest,
    service_url,
)

__all__ = ["START_TIMEOUT", "Regtest", "RegtestStartError", "running_regtest", "service_url"]
