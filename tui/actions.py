"""The operator's actions: one catalogue for the key bindings, the command palette and the
help screen, and `why_not`, the reason an action cannot run right now (the app greys it
out in the footer and says the reason in the palette, the help screen and a notice when
its key is pressed). No Textual here.
"""

from __future__ import annotations

from dataclasses import dataclass

from tui.model import Key, short
from tui.state import ConsoleState


@dataclass(frozen=True)
class Action:
    name: str  # the app's action_<name>
    key: str  # its key binding
    label: str  # footer text
    title: str  # command palette entry
    help: str
    writes_ledger: bool = False  # irreversible: asks for confirmation first
    needs_node: bool = True


ACTIONS: tuple[Action, ...] = (
    Action(
        "keygen",
        "g",
        "Keygen",
        "Start keygen",
        "Make a new threshold key: choose the threshold and the parties",
        writes_ledger=True,
    ),
    Action(
        "sign",
        "s",
        "Sign",
        "Sign a message",
        "Sign text or hex with the selected key; shows the digest before it is sent",
        writes_ledger=True,
    ),
    Action(
        "refresh_key",
        "r",
        "Refresh",
        "Refresh the selected key",
        "Re-share the selected key among its parties (new epoch, same public key)",
        writes_ledger=True,
    ),
    Action(
        "presign",
        "p",
        "Presign",
        "Top up presignatures",
        "Make presignatures for the selected key ahead of signing",
        writes_ledger=True,
    ),
    Action(
        "derive",
        "d",
        "Derive",
        "Derive a child key",
        "Derive a non-hardened BIP-32 child of the selected key (public derivation)",
    ),
    Action(
        "copy_public_key",
        "c",
        "Copy key",
        "Copy the public key",
        "Copy the selected key's compressed public key to the clipboard",
        needs_node=False,
    ),
    Action(
        "copy_signature",
        "y",
        "Copy sig",
        "Copy the signature",
        "Copy the selected signature (r ‖ s ‖ v, hex) to the clipboard",
        needs_node=False,
    ),
)
BY_NAME = {a.name: a for a in ACTIONS}


def why_not(name: str, state: ConsoleState) -> str | None:
    """None if `name` can run now, else why not, in words for the operator."""
    action = BY_NAME.get(name)
    if action is None:
        return None
    if action.needs_node:
        if not state.link.connected:
            return "not connected to the node"
        if not state.link.synced:
            return "still loading the node's state"
    if name in state.in_flight:
        return f"a {action.label.lower()} request is already on its way"
    if name == "keygen":
        return _ledger_reason(state) or _keygen_reason(state)
    if name == "copy_signature":
        sig = state.current_signature()
        if sig is None:
            return "the selected key has no signature yet"
        if not sig.done:
            return f"signature {short(sig.signature_id)} is {sig.status}"
        return None
    key = state.current_key()
    if key is None:
        return "no key yet: start keygen first (g)"
    if name == "copy_public_key":
        return None if key.public_key else f"key {short(key.key_id)} has no public key yet"
    if not key.active:
        return f"key {short(key.key_id)} is {key.status}"
    if name == "derive":
        return None
    return _ledger_reason(state) or _signers_reason(state, key)


def _ledger_reason(state: ConsoleState) -> str | None:
    online, n, needed = state.quorum()
    if n and online < needed:
        return f"only {online} of {n} validators online; the ledger needs {needed} to commit"
    return None


def _keygen_reason(state: ConsoleState) -> str | None:
    n = len(state.validators) or (state.status.validators if state.status else 0)
    if n < 2:
        return f"keygen needs at least two validators; the network has {n}"
    return None


def _signers_reason(state: ConsoleState, key: Key) -> str | None:
    online = state.online_parties(key)
    if online is not None and online < key.threshold + 1:
        return (
            f"only {online} of the key's {len(key.parties)} parties are online; "
            f"{key.threshold + 1} must take part"
        )
    return None
