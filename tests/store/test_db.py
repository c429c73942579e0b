"""The store contract (LevelDB and the in-memory double), the lock, and crash atomicity."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tssnode.store import LevelStore, StoreLocked, layout
from tssnode.store.db import KeyValueStore, open_store
from tssnode.testing.memstore import MemoryStore


@pytest.fixture(params=["level", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path):
    s: KeyValueStore = LevelStore(tmp_path / "db") if request.param == "level" else MemoryStore()
    yield s
    s.close()


def test_put_get_delete(store: KeyValueStore) -> None:
    store.put(b"a", b"1")
    assert store.get(b"a") == b"1"
    store.delete(b"a")
    assert store.get(b"a") is None


def test_big_endian_keys_iterate_in_numeric_order(store: KeyValueStore) -> None:
    heights = [0, 1, 255, 256, 65_535, 2**40, 7]
    with store.batch() as b:
        for h in heights:
            b.put(layout.block(h), layout.u64(h))
        b.put(layout.block_by_hash(b"\x00" * 32), b"other prefix")
    got = [layout.read_u64(v) for _, v in store.iterate(layout.BLOCK)]
    assert got == sorted(heights)
    assert [layout.read_u64(v) for _, v in store.iterate(layout.BLOCK, reverse=True)] == sorted(
        heights, reverse=True
    )
    from_256 = [layout.read_u64(v) for _, v in store.iterate(layout.BLOCK, start=layout.block(256))]
    assert from_256 == [256, 65_535, 2**40]
    last = store.last(layout.BLOCK)
    assert last is not None and layout.read_u64(last[1]) == 2**40


def test_batch_is_all_or_nothing_when_the_block_raises(store: KeyValueStore) -> None:
    store.put(b"keep", b"old")
    with pytest.raises(RuntimeError), store.batch() as b:
        b.put(b"keep", b"new")
        b.put(b"other", b"x")
        assert b.get(b"keep") == b"new"  # reads see the batch's own writes
        raise RuntimeError("crash before commit")
    assert store.get(b"keep") == b"old"
    assert store.get(b"other") is None


def test_layout_widths() -> None:
    assert len(layout.block(1)) == 9
    assert len(layout.own_vote(2, 3, 4)) == 18
    assert len(layout.key_share("00" * 16, 1)) == 1 + 16 + 4
    with pytest.raises(ValueError):
        layout.block_by_hash(b"short")
    with pytest.raises(ValueError):
        layout.key_id_bytes("not hex")


def test_second_opener_gets_a_clear_error_naming_the_directory(tmp_path: Path) -> None:
    path = tmp_path / "node1"
    first = open_store(path)
    try:
        with pytest.raises(StoreLocked, match=str(path)):
            open_store(path)
    finally:
        first.close()
    open_store(path).close()  # free again once closed


def test_second_process_gets_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "node1"
    first = open_store(path)
    try:
        code = textwrap.dedent(
            f"""
            from tssnode.store import StoreLocked, open_store
            try:
                open_store({str(path)!r})
            except StoreLocked as exc:
                print("LOCKED:", exc)
            """
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert "LOCKED:" in out.stdout and str(path) in out.stdout
        assert "Traceback" not in out.stderr
    finally:
        first.close()


WRITER = textwrap.dedent(
    """
    import sys
    from tssnode.store import open_store, layout
    store = open_store(sys.argv[1])
    keys = int(sys.argv[2])
    gen = 0
    print("ready", flush=True)
    while True:
        gen += 1
        with store.batch() as b:
            for i in range(keys):
                b.put(layout.state(9, layout.u32(i)), layout.u64(gen) + b"x" * 200)
            b.put(layout.meta("generation"), layout.u64(gen))
        print(gen, flush=True)
    """
)


@pytest.mark.parametrize("after", [1, 7])
def test_kill_during_batches_leaves_each_batch_whole(tmp_path: Path, after: int) -> None:
    """SIGKILL a process in the middle of writing synced batches: after reopening, every
    key of the batch shows the same generation (the last batch is all there or absent)."""
    path = tmp_path / "db"
    keys = 300
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(keys)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    with proc.stdout:
        assert proc.stdout.readline().strip() == "ready"
        for _ in range(after):  # it has written `after` batches and is busy with the next
            proc.stdout.readline()
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with open_store(path) as store:
        raw = store.get(layout.meta("generation"))
        gens = {layout.read_u64(v) for _, v in store.iterate(layout.state_table(9))}
        if raw is None:
            assert gens == set()
        else:
            assert gens == {layout.read_u64(raw)}
            assert sum(1 for _ in store.iterate(layout.state_table(9))) == keys
