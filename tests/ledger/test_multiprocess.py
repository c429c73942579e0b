"""Four replicas as separate processes, each with its own LevelDB, over TCP on loopback.

The transport here is the test's own (tssnode/testing/loopback.py); the same test over the
real libp2p layer (tssnode/net) is the one of the multi-node tests in tests/node/."""

from __future__ import annotations

import hashlib
import json
import select
import socket
import subprocess
from pathlib import Path

from tssnode import launch
from tssnode.crypto.identity import IdentityKey
from tssnode.ledger.genesis import Validator, genesis_toml, make_genesis

ROOT = Path(__file__).resolve().parents[2]


def read_tip(p: subprocess.Popen[str], limit: float = 120.0) -> list[str]:
    """The node's TIP line; a node that never gets there fails the test (not hangs it)."""
    assert p.stdout is not None
    ready, _, _ = select.select([p.stdout], [], [], limit)
    line = p.stdout.readline() if ready else ""
    if not line.startswith("TIP"):
        p.kill()
        err = p.stderr.read() if p.stderr else ""
        raise AssertionError(f"a node did not reach the target height: {line!r} {err[-2000:]}")
    return line.split()


def test_four_processes_commit_the_same_chain(tmp_path: Path) -> None:
    seeds = [hashlib.sha256(b"multiprocess:%d" % i).digest() for i in range(4)]
    keys = [IdentityKey.from_seed(s) for s in seeds]
    genesis = make_genesis([Validator(k.public_bytes(), f"p{i}", "") for i, k in enumerate(keys)])
    (tmp_path / "genesis.toml").write_text(genesis_toml(genesis))
    listeners = []
    for _ in keys:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        listeners.append(s)
    ports = {
        k.public_bytes().hex(): s.getsockname()[1] for k, s in zip(keys, listeners, strict=True)
    }
    target = 12  # requests: 4 nodes × 3
    procs = []
    try:
        for i, (seed, s) in enumerate(zip(seeds, listeners, strict=True)):
            args = [
                str(tmp_path / "genesis.toml"), seed.hex(), str(s.fileno()), json.dumps(ports),
                str(tmp_path / f"node{i}"), str(target),
            ]  # fmt: skip
            # stdin, stdout and stderr pipes, text; closing stdin stops the replica
            procs.append(
                launch.start_piped(
                    "tssnode.testing.loopback", *args, cwd=ROOT, pass_fds=(s.fileno(),)
                )
            )
        for s in listeners:
            s.close()
        tips = [read_tip(p) for p in procs]
        assert len({tuple(t) for t in tips}) == 1, tips  # the same block hash everywhere
    finally:
        for p in procs:
            if p.stdin:
                p.stdin.close()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            for f in (p.stdout, p.stderr):
                if f:
                    f.close()
