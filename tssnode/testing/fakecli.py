"""The console tests' fake node API (`tssnode/testing/fakenode.py`) behind the blocking
`ApiClient` the command line uses, with scripted progress: a request is first unordered,
then in a block with a running protocol session, then settled (or failed).

`SyncNode.install(monkeypatch)` makes every `ApiClient` that the command line
(`tssnode.cli`) creates talk to it (the HTTP transport is swapped; request building, auth,
error mapping are the real client's)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import Counter
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from tssnode.api.client import ApiClient
from tssnode.cli import client, follow, processes
from tssnode.testing.fakenode import TOKEN, URL, FakeNode

if TYPE_CHECKING:
    import pytest  # (a dev dependency: only in an annotation here)

#: the frozen data's keys (`fixtures/node1/keys.json`): a key's id, a keygen request's id
ACTIVE_KEY = "b68f625c004ac253029106998f095e32"  # threshold 2 of 4 parties
PENDING_KEY = "613de07c7dafc481940ad6a4508a9d88de9ce28eaeedac9384bf263bc0353607"


class SyncNode:
    def __init__(self, *, settle_after: int = 4, fail: str | None = None) -> None:
        self.node = FakeNode()
        self.settle_after = settle_after
        self.fail = fail  # settle signatures and keys as failed, with this check
        self.polls: Counter[str] = Counter()
        self.session_seq = 0

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        transport = httpx.MockTransport(self.handle)
        for module in (client, processes):  # every CLI module that makes an ApiClient
            monkeypatch.setattr(module, "ApiClient", partial(ApiClient, transport=transport))
        monkeypatch.setattr(follow, "POLL_S", 0.0)  # (every CLI wait polls through it)

    def token_file(self, tmp_path: Path) -> Path:
        path = tmp_path / "api.token"
        path.write_text(TOKEN + "\n")
        return path

    def api_args(self, tmp_path: Path) -> list[str]:
        return ["--api", URL, "--token-file", str(self.token_file(tmp_path))]

    # -- HTTP ------------------------------------------------------------------------------
    def handle(self, request: httpx.Request) -> httpx.Response:
        if f"{request.url.scheme}://{request.url.host}:{request.url.port}" != URL:
            raise httpx.ConnectError("connection refused (no fake node here)", request=request)
        parts = request.url.path.strip("/").split("/")
        if request.method == "GET" and len(parts) == 2 and parts[0] in ("signatures", "keys"):
            self._advance(parts[0], parts[1])
        return asyncio.run(self.node.handle(request))

    def _advance(self, kind: str, ident: str) -> None:
        table = self.node.signatures if kind == "signatures" else self.node.keys
        item = table.get(ident)
        if item is None or item["status"] != "pending":
            return
        self.polls[ident] += 1
        poll = self.polls[ident]
        if poll == 2:  # ordered: in the next block, a session runs
            item["height"] = self.node.status["height"] + 1
            self._session(kind, ident, item)
        if poll >= self.settle_after:
            for s in self.node.sessions:
                if s.get("request") == ident:
                    s.update(status="failed" if self.fail else "done", finished=self.node.clock)
            if self.fail:
                item.update(status="failed", error=self.fail)
                if kind == "signatures":
                    culprit = self.node.validators[3]["index"]  # a blame names an index
                    item["blame"] = {"culprits": [culprit], "check": self.fail, "round": 1}
            elif kind == "signatures":
                self.node.complete_signature(ident)
            else:
                self.node.complete_keygen(ident)

    def _session(self, kind: str, ident: str, item: dict[str, Any]) -> None:
        """The request's protocol session (the fake's own, if it lists one), running:
        round 1, waiting for party 2 (as a real node names the parties: by index)."""
        phase, rounds = ("sign", 1) if kind == "signatures" else ("keygen", 4)
        running = {"status": "running", "round": 1, "rounds": rounds, "waiting_for": [2]}
        for s in self.node.sessions:
            if s.get("request") == ident:
                s.update(running)
                return
        self.session_seq += 1
        self.node.sessions.append(
            {
                "session_id": hashlib.sha256(f"session {self.session_seq}".encode()).hexdigest(),
                "phase": phase,
                "request": ident,
                "key_id": item["key_id"] if kind == "signatures" else "",
                "parties": [str(v["index"]) for v in self.node.validators],
                **running,
                "started": self.node.clock,
                "finished": None,
                "elapsed_s": 0.4,
                "culprits": [],
                "error": None,
            }
        )

    # -- the ledger --------------------------------------------------------------------------
    def add_sign_blocks(self) -> list[str]:
        """Put the fixture's signatures into blocks, one per block, in the order listed
        (so the last one listed is the newest); returns their ids, newest first."""
        ids = list(self.node.signatures)
        for sig_id in ids:
            height = self.node.status["height"] + 1
            self.node.status["height"] = height
            block = {
                "height": height,
                "hash": hashlib.sha256(f"block {height}".encode()).hexdigest(),
                "prev_hash": "00" * 32,
                "proposer": self.node.status["primary"],
                "view": self.node.status["view"],
                "time": self.node.clock,
                "commit_latency_ms": 40,
                "txs": [
                    {
                        "hash": sig_id,
                        "kind": "SignRequest",
                        "submitter": self.node.status["peer_id"],
                        "height": height,
                    }
                ],
                "certificate": {"view": self.node.status["view"], "signers": [], "quorum": 3},
            }
            self.node.blocks.append(block)
            self.node.signatures[sig_id]["height"] = height
        return list(reversed(ids))


def parse_json(text: str) -> Any:
    """Exactly one JSON document (json.loads refuses anything after it)."""
    return json.loads(text)
