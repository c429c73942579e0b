"""`tssnode bench console`: the operator console under a fast event stream.

The console (`tui.app.ConsoleApp`) runs headless (Textual's `run_test`) against an
in-process node double: it answers the routes the console reads and streams events
through the real API client (server-sent events over `httpx.MockTransport`), as fast as
the console takes them or at `--rate` events/s, for `--duration` seconds. The mix is a
busy network's: proofs, blocks, protocol sessions with their rounds, log lines, a peer
going down and up, blame, view changes. Meanwhile a key switching screens (1…7) is
pressed every `--press-every` seconds and timed from the keypress to the screen shown.
Reports events applied, RSS (VmRSS) before and after, CPU time, and input latency.

    tssnode bench console [--duration 60] [--rate 0] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import resource
import statistics
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
from textual import events
from textual.widgets import TabbedContent

from tssnode.api.client import AsyncApiClient
from tssnode.bench.report import table, write_section

URL = "http://127.0.0.1:3001"
TOKEN = "bench-token"
SIZE = (160, 48)
#: screens in the order of their keys 1…7 (tui.screens.main.TABS)
SCREENS = ("peers", "validators", "sessions", "proofs", "chain", "keys", "log")
CHUNK = 64  # events per read of the stream when it runs flat out (a socket's worth)


def _h(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()


PEERS = [f"12D3KooWBench{_h(f'peer {i}')[:40]}" for i in range(1, 5)]


class EventSource:
    """A busy node as the console sees it: a few routes and an endless event stream."""

    def __init__(self, rate: float = 0.0) -> None:
        self.rate = rate  # events per second; 0: as fast as the reader takes them
        self.seq = 0
        self.height = 10
        self.view = 1
        self.sessions = 0
        self.open: list[tuple[str, str, int]] = []  # running sessions: ssid, phase, round
        self.peer_down: str | None = None
        self.started = asyncio.Event()  # set: start streaming
        self.stopped = False
        self.requests: Counter[str] = Counter()

    def client(self, base_url: str, token: str) -> AsyncApiClient:
        return AsyncApiClient(
            base_url, token, timeout=30.0, transport=httpx.MockTransport(self.handle)
        )

    # -- routes -----------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return {
            "peer_id": PEERS[0],
            "network": "bench",
            "chain_id": _h("bench chain"),
            "height": self.height,
            "view": self.view,
            "primary": PEERS[self.view % 4],
            "is_primary": self.view % 4 == 0,
            "peers_connected": 3 - (self.peer_down is not None),
            "validators": 4,
            "version": "bench",
            "uptime_s": 1000.0 + time.monotonic(),
            "event_seq": self.seq,
        }

    def block(self, height: int) -> dict[str, Any]:
        return {
            "height": height,
            "hash": _h(f"block {height}"),
            "prev_hash": _h(f"block {height - 1}"),
            "proposer": PEERS[self.view % 4],
            "view": self.view,
            "time": time.time(),
            "txs": [],
            "commit_latency_ms": 40.0,
            "certificate": {"signers": PEERS[:3], "quorum": 3},
        }

    async def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.requests[path.split("/")[1] if "/" in path else path] += 1
        if path == "/events":
            return httpx.Response(
                200, headers={"content-type": "text/event-stream"}, content=self._sse()
            )
        up = [p for p in PEERS[1:] if p != self.peer_down]
        answers: dict[str, Any] = {
            "/status": self.status(),
            "/validators": [
                {
                    "peer_id": p,
                    "index": i,
                    "status": "offline" if p == self.peer_down else "online",
                    "keys": [],
                }
                for i, p in enumerate(PEERS, start=1)
            ],
            "/peers": [
                {
                    "peer_id": p,
                    "address": f"/ip4/127.0.0.1/tcp/{9000 + i}",
                    "latency_ms": 0.4,
                    "last_seen": time.time(),
                    "status": "connected" if p in up else "disconnected",
                    "validator": True,
                }
                for i, p in enumerate(PEERS[1:], start=2)
            ],
            "/sessions": [],
            "/keys": [],
        }
        if path in answers:
            return httpx.Response(200, json=answers[path])
        if path == "/blocks":
            start = int(request.url.params.get("from", 0))
            limit = int(request.url.params.get("limit", 20))
            last = min(self.height, start + limit - 1)
            return httpx.Response(200, json=[self.block(h) for h in range(start, last + 1)])
        if path.startswith("/blocks/"):
            return httpx.Response(200, json=self.block(int(path.split("/")[2])))
        return httpx.Response(404, json={"error": "Not Found"})

    # -- the stream ---------------------------------------------------------------------------
    async def _sse(self) -> AsyncIterator[bytes]:
        await self.started.wait()
        t0 = time.monotonic()
        sent = 0
        while not self.stopped:
            if self.rate:
                due = int((time.monotonic() - t0) * self.rate) - sent
                if due <= 0:
                    await asyncio.sleep(0.005)
                    continue
            else:
                due = CHUNK
            frames = [self._frame(self.next_event()) for _ in range(due)]
            sent += due
            yield b"".join(frames)
            await asyncio.sleep(0)  # a socket read: other tasks run between reads
        await asyncio.Event().wait()  # the stream stays open, quiet

    @staticmethod
    def _frame(event: dict[str, Any]) -> bytes:
        data = json.dumps(event, separators=(",", ":"))
        return f"id: {event['seq']}\nevent: {event['kind']}\ndata: {data}\n\n".encode()

    def next_event(self) -> dict[str, Any]:
        self.seq += 1
        n = self.seq
        ev: dict[str, Any]
        if n % 10 == 0:
            self.height += 1
            ev = {
                "kind": "block.committed",
                "height": self.height,
                "hash": _h(f"block {self.height}"),
                "txs": n % 3,
                "latency_ms": 35.0 + n % 20,
            }
        elif n % 10 in (1, 6):
            ev = self._session_event()
        elif n % 10 == 3:
            level = ("debug", "info", "info", "warn")[n % 4]
            ev = {"kind": "log", "level": level, "message": f"gossip round {n}: 3 messages"}
        elif n % 1000 == 500:
            self.peer_down = PEERS[1 + n // 1000 % 3]
            ev = {"kind": "peer.down", "peer_id": self.peer_down}
        elif n % 1000 == 700 and self.peer_down:
            ev = {"kind": "peer.up", "peer_id": self.peer_down}
            self.peer_down = None
        elif n % 5000 == 2500:
            self.view += 1
            ev = {"kind": "view.changed", "view": self.view, "primary": PEERS[self.view % 4]}
        elif n % 100 == 57:
            ev = {"kind": "proof.rejected", "proof": "enc", "party": 1 + n % 4, "seconds": 0.02}
            ev["reason"] = "the response z fails the range check"
        else:
            proof = ("enc", "log", "aff-g", "mod", "fac")[n % 5]
            ev = {"kind": "proof.verified", "proof": proof, "party": 1 + n % 4, "seconds": 0.002}
        return {"seq": n, "time": time.time(), **ev}

    def _session_event(self) -> dict[str, Any]:
        if len(self.open) < 3:
            self.sessions += 1
            ssid = _h(f"session {self.sessions}")
            phase = ("presign", "sign", "refresh", "keygen")[self.sessions % 4]
            self.open.append((ssid, phase, 0))
            return {"kind": "session.started", "ssid": ssid, "phase": phase, "parties": [1, 2, 3]}
        ssid, phase, rnd = self.open.pop(0)
        if rnd < 3:
            self.open.append((ssid, phase, rnd + 1))
            return {
                "kind": "session.round",
                "ssid": ssid,
                "phase": phase,
                "round": rnd + 1,
                "of": 3,
                "waiting_for": [2, 3],
            }
        if self.sessions % 50 == 0:
            return {
                "kind": "session.failed",
                "ssid": ssid,
                "phase": phase,
                "round": 3,
                "culprits": [3],
                "check": "the signature share of party 3 does not verify",
            }
        return {"kind": "session.done", "ssid": ssid, "phase": phase, "seconds": 0.8}


def rss_mb() -> float:
    """The resident set size now (VmRSS), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Result:
    duration: float = 0.0
    rate: float = 0.0
    emitted: int = 0
    applied: int = 0
    catch_up: float = 0.0
    rss_before: float = 0.0
    rss_after: float = 0.0
    rss_peak: float = 0.0
    cpu: float = 0.0
    latencies: list[float] = field(default_factory=list)
    rss_samples: list[tuple[float, float, int]] = field(default_factory=list)  # s, MB, seq
    late_presses: int = 0
    kept: dict[str, int] = field(default_factory=dict)
    draws: dict[str, int] = field(default_factory=dict)


async def _press(app: Any, tabs: TabbedContent, index: int, within: float) -> float | None:
    """Press the key of screen `index` (as the terminal driver would send it) and time it
    until that screen is the one shown; None if it took longer than `within` seconds."""
    key = str(index + 1)
    t0 = time.perf_counter()
    app.post_message(events.Key(key, key))
    while time.perf_counter() - t0 < within:  # polled: the probe must not change the app
        if tabs.active == SCREENS[index]:
            return time.perf_counter() - t0
        await asyncio.sleep(0.001)
    return None


async def run(duration: float, rate: float, press_every: float) -> Result:
    from tui.app import ConsoleApp
    from tui.link import Target

    source = EventSource(rate)
    app = ConsoleApp(Target(URL, lambda: TOKEN), factory=source.client, animations=False)
    out = Result(duration=duration, rate=rate)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        for _ in range(1000):
            if app.state.link.synced:
                break
            await pilot.pause(0.01)
        await pilot.pause(0.5)
        out.rss_before = rss_mb()
        cpu0 = cpu_s()
        tabs = app.main.query_one("#tabs", TabbedContent)
        source.started.set()
        t_start = time.monotonic()
        t_end = t_start + duration
        next_sample = t_start
        index = 0
        while time.monotonic() < t_end:
            if time.monotonic() >= next_sample:
                elapsed = time.monotonic() - t_start
                out.rss_samples.append((elapsed, rss_mb(), app.state.last_seq or 0))
                next_sample += duration / 6
            await asyncio.sleep(press_every)
            index = (index + 1) % len(SCREENS)
            latency = await _press(app, tabs, index, within=30.0)
            if latency is None:
                out.late_presses += 1
            else:
                out.latencies.append(latency)
        source.stopped = True
        out.emitted = source.seq
        t0 = time.monotonic()
        while time.monotonic() - t0 < 120:
            if (app.state.last_seq or 0) >= source.seq:
                break
            await asyncio.sleep(0.05)
        out.catch_up = time.monotonic() - t0
        await pilot.pause(0.5)
        out.applied = app.state.last_seq or 0
        out.cpu = cpu_s() - cpu0
        out.rss_after = rss_mb()
        out.kept = {
            "log lines": len(app.state.log.lines),
            "blocks": len(app.state.blocks),
            "sessions": len(app.state.sessions),
            "notices on screen": len(app.screen.query("Toast")),
        }
        out.draws = {str(area): n for area, n in app.draws.items()}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out.rss_peak = max([peak, out.rss_after, *(mb for _, mb, _ in out.rss_samples)])
    return out


def _rates(samples: list[tuple[float, float, int]], duration: float, last: int) -> list[str]:
    """Events applied per second between samples (the last one to the end)."""
    points = [(t, seq) for t, _, seq in samples] + [(duration, last)]
    return [f"{(b - a) / (t1 - t0):,.0f}" for (t0, a), (t1, b) in pairwise(points) if t1 > t0]


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.0f} ms" if seconds >= 0.01 else f"{seconds * 1e3:.1f} ms"


def report(r: Result) -> str:
    lat = sorted(r.latencies)
    p50 = statistics.median(lat) if lat else float("nan")
    p95 = lat[min(len(lat) - 1, int(0.95 * len(lat)))] if lat else float("nan")
    stream = "as fast as the console reads" if not r.rate else f"{r.rate:.0f} events/s"
    rows = [
        ["event stream", f"{stream}, {r.duration:.0f} s"],
        ["events applied", f"{r.applied:,} ({r.applied / r.duration:,.0f}/s)"],
        ["caught up after the stream stopped", f"{r.catch_up:.1f} s"],
        ["RSS before → after", f"{r.rss_before:.0f} MB → {r.rss_after:.0f} MB"],
        ["RSS growth", f"{r.rss_after - r.rss_before:+.0f} MB (peak {r.rss_peak:.0f} MB)"],
        [
            "RSS during the stream",
            ", ".join(f"{mb:.0f} MB at {t:.0f} s" for t, mb, _ in r.rss_samples),
        ],
        ["events/s during the stream", ", ".join(_rates(r.rss_samples, r.duration, r.applied))],
        ["CPU time", f"{r.cpu:.1f} s ({1e6 * r.cpu / max(1, r.applied):.0f} µs per event)"],
        [
            "input latency (key 1…7 → screen shown)",
            f"p50 {_ms(p50)}, p95 {_ms(p95)}, max {_ms(lat[-1]) if lat else '-'}"
            f" ({len(lat)} presses{f', {r.late_presses} over 30 s' if r.late_presses else ''})",
        ],
        ["kept at the end", ", ".join(f"{v} {k}" for k, v in r.kept.items())],
    ]
    if r.draws:
        total = sum(r.draws.values())
        rows.append(["redraws (all areas)", f"{total:,} for {r.applied:,} events"])
    return table(["console under load", "result"], rows)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="tssnode bench console", description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of streaming")
    ap.add_argument("--rate", type=float, default=0.0, help="events/s (0: as fast as read)")
    ap.add_argument("--press-every", type=float, default=0.25, help="seconds between keys")
    ap.add_argument("--write", type=Path)
    args = ap.parse_args(argv)
    result = asyncio.run(run(args.duration, args.rate, args.press_every))
    out = report(result)
    print(out)
    if args.write:
        body = (
            "The console (`tui.app.ConsoleApp`) headless at 160×48 (Textual's `run_test`), "
            "reading an in-process node double through the real API client (server-sent "
            "events over `httpx.MockTransport`): proofs, blocks, protocol sessions and their "
            "rounds, log lines, a validator going down and up every 1,000 events, view "
            "changes. Meanwhile a screen key (1…7) is pressed every "
            f"{args.press_every:g} s and timed until that screen is shown. One process on "
            "this 2-core machine; the node double shares the console's event loop.\n\n" + out
        )
        command = f"tssnode bench console --duration {args.duration:g}"
        if args.rate:
            command += f" --rate {args.rate:g}"
        write_section(args.write, "console", body, command + " --write docs/benchmarks.md")
    return 0
