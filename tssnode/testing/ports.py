"""TCP ports for test and bench nodes on 127.0.0.1.

`bind(("127.0.0.1", 0))` hands out a port from the kernel's ephemeral range, the range
every outbound connection also takes its local port from. A port picked that way and
bound by a node a moment later can meanwhile become the local end of some client's
connection: `bench cluster` once failed so (EADDRINUSE on a node's listen port). These
ports come from below that range instead, at random, each checked free, and never the
same twice in one process.
"""

from __future__ import annotations

import random
import socket

#: the lowest port handed out (below it: well-known and registered services)
LOW = 20_000
_given: set[int] = set()
_random = random.SystemRandom()


def ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (Linux; 32768 if unknown)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def free_port() -> int:
    """A TCP port on 127.0.0.1, free a moment ago, outside the ephemeral range."""
    high = ephemeral_low() - 1
    for _ in range(500):
        port = _random.randint(LOW, high) if high > LOW else 0
        if port in _given:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            port = int(s.getsockname()[1])
        _given.add(port)
        return port
    raise RuntimeError(f"no free TCP port in [{LOW}, {high}] on 127.0.0.1")
