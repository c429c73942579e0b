"""The operator's actions as the app runs them: a dialog, a confirmation for anything
irreversible, then one API call in a worker. Results come back as `ActionDone` or
`ActionFailed`; the app turns them into state, notices and log lines.

Each `action_*` here is a worker (exclusive per action, errors never end the app); the
app's `check_action` greys it out while `tui.actions.why_not` gives a reason.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import App

from tssnode.api.client import ApiError, ApiUnavailable
from tui.link import NodeLink
from tui.messages import ActionDone, ActionFailed
from tui.model import short
from tui.screens.confirm import ConfirmModal
from tui.screens.forms import DeriveModal, PresignModal
from tui.screens.keygen import KeygenModal
from tui.screens.sign import SignModal, sign_confirmation
from tui.state import Changes, ConsoleState


class Operations(App[None]):
    state: ConsoleState
    link: NodeLink

    def apply(self, changes: Changes, *, notify_now: bool = False) -> None:
        """Note what changed (the app's)."""
        raise NotImplementedError

    # -- ledger-writing actions (confirmed) --------------------------------------------------
    @work(exclusive=True, group="op:keygen", exit_on_error=False)
    async def action_keygen(self) -> None:
        state = self.state
        modal = KeygenModal(state.validators, state.me, state.validator_name)
        request = await self.push_screen_wait(modal)
        if request is None:
            return
        summary = request.summary(state.party)
        if await self.confirmed("keygen", ConfirmModal("Start keygen?", summary, "Start")):
            await self.submit("keygen", "/keygen", request.body(), request.body())

    @work(exclusive=True, group="op:sign", exit_on_error=False)
    async def action_sign(self) -> None:
        key = self.state.current_key()
        if key is None:
            return
        active = [k for k in self.state.keys.values() if k.active]
        request = await self.push_screen_wait(SignModal(active, key))
        if request is None:
            return
        confirm = ConfirmModal("Sign this digest?", sign_confirmation(request), "Sign")
        if not await self.confirmed("sign", confirm):
            return
        body = request.body()
        result = await self.submit("sign", "/sign", body, {**body, "digest": request.digest.hex()})
        if isinstance(result, dict) and result.get("digest") not in (None, request.digest.hex()):
            self.notify(
                f"the node signs {result.get('digest')}, the console computed "
                f"{request.digest.hex()}: the hashing rules differ",
                title="digest mismatch",
                severity="error",
                timeout=30,
            )
            self.state.note("error", f"digest mismatch for {result.get('signature_id')}")

    @work(exclusive=True, group="op:refresh", exit_on_error=False)
    async def action_refresh_key(self) -> None:
        key = self.state.current_key()
        if key is None:
            return
        body = Text()
        body.append("A Refresh transaction goes to the ledger. Once committed, the parties of ")
        body.append(f"key {short(key.key_id)}", style="bold")
        body.append(" re-share it: epoch ")
        body.append(f"{key.epoch} → {key.epoch + 1}", style="bold")
        body.append(". The public key and addresses stay the same; the old shares and ")
        body.append(f"the {key.presignatures} unused presignatures are discarded.")
        body.append("\nThis cannot be undone.", style="bold")
        if await self.confirmed("refresh_key", ConfirmModal("Refresh this key?", body, "Refresh")):
            await self.submit("refresh_key", f"/keys/{key.key_id}/refresh", None, {})

    @work(exclusive=True, group="op:presign", exit_on_error=False)
    async def action_presign(self) -> None:
        key = self.state.current_key()
        if key is None:
            return
        count = await self.push_screen_wait(PresignModal(key))
        if count is None:
            return
        body = Text()
        body.append("A Presign transaction goes to the ledger. Once committed, ")
        body.append(f"{key.threshold + 1} signers of key {short(key.key_id)}", style="bold")
        body.append(" make ")
        body.append(f"{count} presignatures", style="bold")
        body.append(f" ({key.presignatures} → {key.presignatures + int(count)}).")
        body.append("\nThe transaction cannot be withdrawn once sent.", style="bold")
        if await self.confirmed("presign", ConfirmModal("Make presignatures?", body, "Presign")):
            await self.submit(
                "presign",
                f"/keys/{key.key_id}/presign",
                {"count": int(count)},
                {"count": int(count)},
            )

    # -- reversible or local actions ---------------------------------------------------------
    @work(exclusive=True, group="op:derive", exit_on_error=False)
    async def action_derive(self) -> None:
        key = self.state.current_key()
        if key is None:
            return
        path = await self.push_screen_wait(DeriveModal(key))
        if path is not None:
            await self.submit("derive", f"/keys/{key.key_id}/derive", {"path": path}, {})

    def action_copy_public_key(self) -> None:
        key = self.state.current_key()
        if key is None or not key.public_key:
            return
        self.copy_to_clipboard(key.public_key)
        self.notify(f"public key of {short(key.key_id)} copied: {short(key.public_key, 10, 6)}")

    def action_copy_signature(self) -> None:
        sig = self.state.current_signature()
        if sig is None or not sig.done:
            return
        self.copy_to_clipboard(sig.compact())
        self.notify(f"signature {short(sig.signature_id)} copied (r ‖ s ‖ v, 65 bytes hex)")

    # -- the one way an action reaches the node ----------------------------------------------
    async def confirmed(self, action: str, confirm: ConfirmModal) -> bool:
        """Ask; a cancelled confirmation says that nothing was sent (an operator who
        pressed a key by mistake must know the request did not go)."""
        if await self.push_screen_wait(confirm):
            return True
        self.apply(self.state.cancelled(action))
        return False

    async def submit(
        self, action: str, path: str, body: Any, request: dict[str, Any]
    ) -> Any | None:
        """POST `body` to `path`; post ActionDone or ActionFailed. `request` is what the
        state needs to show the result before the node reports it (a pending item)."""
        self.state.in_flight.add(action)
        self.refresh_bindings()
        try:
            result = await self.link.call(path, body)
        except ApiError as exc:
            self.post_message(ActionFailed(action, f"the node refused: {exc.message}"))
            return None
        except ApiUnavailable as exc:
            self.post_message(ActionFailed(action, str(exc)))
            return None
        finally:
            self.state.in_flight.discard(action)
            self.refresh_bindings()
        self.post_message(ActionDone(action, result, request))
        return result
