"""Ports for test nodes come from below the kernel's ephemeral range (where outbound
connections take their local ports, so a port picked there can be taken before the node
binds it), free, and never twice in one process."""

from __future__ import annotations

import socket

from tssnode.testing.ports import LOW, ephemeral_low, free_port


def test_ports_are_free_distinct_and_below_the_ephemeral_range() -> None:
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == 200
    assert all(LOW <= p < ephemeral_low() for p in ports)
    with socket.socket() as s:  # and bindable
        s.bind(("127.0.0.1", ports[-1]))


def test_a_port_in_use_is_not_handed_out(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from tssnode.testing import ports

    with socket.socket() as held:  # someone else's port, in the range
        for port in range(LOW + 7919, ephemeral_low()):
            try:
                held.bind(("127.0.0.1", port))
                break
            except OSError:
                continue
        held.listen()
        taken = held.getsockname()[1]
        picks = iter([taken, taken, taken + 1, taken + 2, taken + 3])
        monkeypatch.setattr(ports._random, "randint", lambda a, b: next(picks))
        got = free_port()
        assert got != taken and got in (taken + 1, taken + 2, taken + 3)
