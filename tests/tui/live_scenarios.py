"""The console's live-network scenarios (issue 7), ready for the multi-node tests.

Each scenario drives the real console app with Pilot against one running node's API,
given its base URL and bearer token, and checks what the operator would check:

- `keygen_becomes_active`: start keygen from the console (dialog, confirmation) and see
  the new key become active, with its addresses, in the Keys area;
- `sign_and_verify`: sign a message from the console, check that the confirmation shows
  the digest the node signs, see the signature arrive, and verify it with `ecdsa`
  (r, s against the key with python-ecdsa, and v by public key recovery);
- `peer_goes_red`: kill a node (the caller's `kill`) and see it go red in Peers and the
  header leave the healthy state.

They need `tssnode run` (the node daemon) and a local network of such nodes; the lead's
multi-node tests call them, e.g.

    key = await keygen_becomes_active(node1.api_url, node1.token, threshold=2)
    sig = await sign_and_verify(node1.api_url, node1.token, key_id=key.key_id)
    await peer_goes_red(node1.api_url, node1.token, peer_id=node3.peer_id, kill=node3.kill)

Until then `test_live_scenarios_double.py` runs them against the HTTP API test double,
so that the scenarios themselves are known to work. `factory` is only for that.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from coincurve import PublicKey
from ecdsa import BadSignatureError, SECP256k1, VerifyingKey
from ecdsa.util import sigdecode_string
from textual.pilot import Pilot
from textual.widgets import Button, DataTable, Input, Select, Static, TextArea

from tssnode.api.client import AsyncApiClient
from tui.app import ConsoleApp
from tui.digests import message_digest
from tui.link import ClientFactory, Target
from tui.model import Key, Signature
from tui.screens.confirm import ConfirmModal
from tui.screens.keygen import KeygenModal
from tui.screens.sign import SignModal

SIZE = (120, 40)


class ScenarioFailed(AssertionError):
    """The console did not show what the scenario expected, in time."""


def _app(base_url: str, token: str, factory: ClientFactory) -> ConsoleApp:
    return ConsoleApp(
        Target(base_url.rstrip("/"), lambda: token),
        factory=factory,
        poll_interval=1.0,
        animations=False,
    )


async def _until(pilot: Pilot[Any], ok: Callable[[], object], what: str, within: float) -> None:
    for _ in range(int(within / 0.05)):
        if ok():
            return
        await pilot.pause(0.05)
    raise ScenarioFailed(f"timed out after {within:.0f} s waiting for {what}")


async def _synced(pilot: Pilot[Any], app: ConsoleApp, within: float) -> None:
    await _until(pilot, lambda: app.state.link.synced, "the console to load the node", within)


async def keygen_becomes_active(
    base_url: str,
    token: str,
    *,
    threshold: int = 1,
    within: float = 300.0,
    factory: ClientFactory = AsyncApiClient,
) -> Key:
    """Keygen over every validator from the console; returns the active key."""
    app = _app(base_url, token, factory)
    async with app.run_test(size=SIZE) as pilot:
        await _synced(pilot, app, 30.0)
        before = set(app.state.keys)
        await pilot.press("g")
        await _until(pilot, lambda: isinstance(app.screen, KeygenModal), "the keygen dialog", 5)
        app.screen.query_one("#threshold", Input).value = str(threshold)
        await pilot.pause()
        if app.screen.query_one("#continue", Button).disabled:
            raise ScenarioFailed(str(app.screen.query_one("#keygen-meaning", Static).render()))
        await pilot.click("#continue")
        await _until(pilot, lambda: isinstance(app.screen, ConfirmModal), "the confirmation", 5)
        await pilot.click("#confirm")
        await _until(pilot, lambda: set(app.state.keys) - before, "the requested key", 30.0)
        key_id = (set(app.state.keys) - before).pop()

        def active() -> bool:  # the request's id may turn into the key's own id
            key = app.state.keys.get(app.state.resolve(key_id))
            return bool(key and key.active and key.public_key and key.addresses.eth)

        await _until(pilot, active, f"key {key_id} to become active", within)
        key_id = app.state.resolve(key_id)
        await pilot.press("6")  # the Keys area lists it as active
        await pilot.pause()
        table = app.main.query_one("#keys-table", DataTable)
        if str(table.get_cell(key_id, "status")) != "active":
            raise ScenarioFailed(f"key {key_id} is not shown as active in Keys")
        return app.state.keys[key_id]


async def sign_and_verify(
    base_url: str,
    token: str,
    *,
    key_id: str | None = None,
    message: str = "signed from the tssnode console",
    hash_name: str = "sha256",
    within: float = 180.0,
    factory: ClientFactory = AsyncApiClient,
) -> Signature:
    """Sign `message` with `key_id` (default: the first active key) from the console;
    returns the signature once verified with `ecdsa`."""
    app = _app(base_url, token, factory)
    async with app.run_test(size=SIZE) as pilot:
        await _synced(pilot, app, 30.0)
        await pilot.press("6")
        if key_id is not None:  # choose it in Keys, as an operator would
            table = app.main.query_one("#keys-table", DataTable)
            await _until(pilot, lambda: key_id in app.state.keys, f"key {key_id}", 10.0)
            await pilot.pause()
            table.move_cursor(row=table.get_row_index(key_id))

            def chosen() -> bool:
                current = app.state.current_key()
                return current is not None and current.key_id == key_id

            await _until(pilot, chosen, "the selection", 5.0)
        key = app.state.current_key()
        if key is None or not key.active or not key.public_key:
            raise ScenarioFailed("no active key to sign with")
        await pilot.press("s")
        await _until(pilot, lambda: isinstance(app.screen, SignModal), "the sign dialog", 5.0)
        app.screen.query_one("#sign-hash", Select).value = hash_name
        app.screen.query_one("#sign-message", TextArea).text = message
        await pilot.pause()
        await pilot.click("#review")
        await _until(pilot, lambda: isinstance(app.screen, ConfirmModal), "the confirmation", 5)
        digest = message_digest(message.encode(), hash_name)
        shown = str(app.screen.query_one("#confirm-body", Static).render())
        if digest.hex() not in shown:
            raise ScenarioFailed(f"the confirmation does not show digest {digest.hex()}")
        before = set(app.state.signatures)
        await pilot.click("#confirm")
        await _until(pilot, lambda: set(app.state.signatures) - before, "the request", 30.0)
        sig_id = (set(app.state.signatures) - before).pop()

        def finished() -> bool:  # a retried request may finish under a new id
            sig = app.state.signatures.get(app.state.resolve(sig_id))
            return sig is not None and sig.status != "pending"

        await _until(pilot, finished, f"signature {sig_id}", within)
        sig = app.state.signatures[app.state.resolve(sig_id)]
        if not sig.done:
            raise ScenarioFailed(f"signing failed: {sig.blame}")
        if sig.digest != digest.hex():
            raise ScenarioFailed(f"the node signed {sig.digest}, not {digest.hex()}")
        verify(key.public_key, sig)
        return sig


def verify(public_key_hex: str, sig: Signature) -> None:
    """r, s verify against the key (python-ecdsa), and v recovers it (libsecp256k1)."""
    assert sig.r and sig.s and sig.v is not None
    key = VerifyingKey.from_string(bytes.fromhex(public_key_hex), curve=SECP256k1)
    rs = bytes.fromhex(sig.r.rjust(64, "0") + sig.s.rjust(64, "0"))
    digest = bytes.fromhex(sig.digest)
    try:
        key.verify_digest(rs, digest, sigdecode=sigdecode_string)
    except BadSignatureError:
        raise ScenarioFailed(f"signature {sig.signature_id} does not verify") from None
    if sig.v not in (27, 28):
        raise ScenarioFailed(f"v = {sig.v} is not 27 or 28")
    recovered = PublicKey.from_signature_and_message(rs + bytes([sig.v - 27]), digest, hasher=None)
    if recovered.format() != bytes.fromhex(public_key_hex):
        raise ScenarioFailed(f"v = {sig.v} does not recover the key")


async def peer_goes_red(
    base_url: str,
    token: str,
    *,
    peer_id: str,
    kill: Callable[[], Awaitable[None] | None],
    within: float = 60.0,
    factory: ClientFactory = AsyncApiClient,
) -> None:
    """`peer_id` is connected; after `kill()` the Peers area shows it disconnected, in
    red, and the header is no longer healthy."""
    app = _app(base_url, token, factory)
    async with app.run_test(size=SIZE) as pilot:
        await _synced(pilot, app, 30.0)
        await pilot.press("1")

        def status() -> str | None:
            peer = app.state.peers.get(peer_id)
            return peer.status if peer else None

        await _until(pilot, lambda: status() == "connected", f"{peer_id} connected", 30.0)
        result = kill()
        if inspect.isawaitable(result):
            await result
        await _until(pilot, lambda: status() == "disconnected", f"{peer_id} to drop", within)
        table = app.main.query_one("#peers-table", DataTable)
        await _until(  # the table is redrawn at most every REDRAW_INTERVAL_S (0.2 s)
            pilot,
            lambda: str(table.get_cell(peer_id, "status")) == "disconnected",
            f"the Peers table to show {peer_id} disconnected",
            2.0,
        )
        cell = table.get_cell(peer_id, "status")
        if str(cell) != "disconnected" or "red" not in str(getattr(cell, "style", "")):
            raise ScenarioFailed(f"{peer_id} is not shown red in Peers: {cell!r}")
        if app.state.health()[0] == "ok":
            raise ScenarioFailed("the header still shows the node healthy")
