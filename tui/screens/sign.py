"""The sign dialog: which key (and child path), the message as text or hex, the hash;
the digest the node will sign is computed here as the operator types, and shown again
in the confirmation before anything is sent."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static, TextArea

from tui.digests import HASH_HELP, HASHES, MessageError, message_bytes, message_digest
from tui.model import Key, short
from tui.paths import PathError, parse_path


@dataclass(frozen=True)
class SignRequest:
    key: Key
    text: str
    is_hex: bool
    hash: str
    path: str | None
    message: bytes
    digest: bytes

    def body(self) -> dict[str, object]:
        body: dict[str, object] = {"key_id": self.key.key_id, "hash": self.hash}
        if self.is_hex:
            body["message_hex"] = self.message.hex()
        else:
            body["message"] = self.text
        if self.path:
            body["path"] = self.path
        return body

    def summary(self) -> Text:
        out = Text()
        out.append("key      ", style="dim")
        out.append(self.key.key_id[:16], style="bold")
        out.append(f"  (any {self.key.quorum} sign)")
        if self.path:
            out.append("\npath     ", style="dim")
            out.append(self.path, style="bold")
            out.append(" (a derived child of this key)")
        out.append("\nmessage  ", style="dim")
        shown = self.message.hex() if self.is_hex else repr(self.text)
        out.append(shown if len(shown) <= 60 else shown[:57] + "…")
        out.append(f"  {len(self.message)} bytes", style="dim")
        out.append("\nhash     ", style="dim")
        out.append(f"{self.hash}: {HASH_HELP.get(self.hash, '')}")
        out.append("\n\nThe node will sign this digest:\n", style="bold")
        return out


def build_request(
    key: Key, text: str, is_hex: bool, hash_name: str, path_text: str
) -> SignRequest | str:
    """The request, or what is wrong with the input."""
    if not text:
        return "type the message to sign"
    try:
        data = message_bytes(text, is_hex=is_hex)
    except MessageError as exc:
        return str(exc)
    path = path_text.strip() or None
    if path and path != "m":
        try:
            parse_path(path)
        except PathError as exc:
            return f"path: {exc}"
    elif path == "m":
        path = None
    return SignRequest(key, text, is_hex, hash_name, path, data, message_digest(data, hash_name))


class SignModal(ModalScreen[SignRequest | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, keys: Sequence[Key], current: Key) -> None:
        super().__init__(classes="dialog-screen")
        self.keys = {k.key_id: k for k in keys}
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="sign-dialog"):
            yield Static("Sign a message", classes="dialog-title")
            with Horizontal(classes="field"):
                yield Label("Key  ")
                yield Select(
                    [(f"{k.key_id[:12]}  {k.quorum}", k.key_id) for k in self.keys.values()],
                    value=self.current.key_id,
                    allow_blank=False,
                    id="sign-key",
                    compact=True,
                )
                yield Label("  Path ")
                yield Input(placeholder="m (optional: m/0/1)", id="sign-path", compact=True)
            with Horizontal(classes="field"):
                yield Label("As   ")
                yield Select(
                    [("text (UTF-8)", "text"), ("hex bytes", "hex")],
                    value="text",
                    allow_blank=False,
                    id="sign-encoding",
                    compact=True,
                )
                yield Label("  Hash ")
                yield Select(
                    [(name, name) for name in HASHES],
                    value="sha256",
                    allow_blank=False,
                    id="sign-hash",
                    compact=True,
                )
            yield TextArea(id="sign-message", soft_wrap=True, show_line_numbers=False)
            yield Static("", id="sign-digest")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Review…", id="review", variant="primary")

    def on_mount(self) -> None:
        message = self.query_one("#sign-message", TextArea)
        if self.app.animation_level == "none":
            message.cursor_blink = False
            self.query_one("#sign-path", Input).cursor_blink = False
        message.focus()
        self._update()

    def request(self) -> SignRequest | str:
        key_id = self.query_one("#sign-key", Select).value
        key = self.keys.get(key_id) if isinstance(key_id, str) else None
        return build_request(
            key or self.current,
            self.query_one("#sign-message", TextArea).text,
            self.query_one("#sign-encoding", Select).value == "hex",
            str(self.query_one("#sign-hash", Select).value),
            self.query_one("#sign-path", Input).value,
        )

    @on(TextArea.Changed)
    @on(Select.Changed)
    @on(Input.Changed)
    def _update(self) -> None:
        request = self.request()
        out = Text()
        if isinstance(request, str):
            out.append(request, style="bold red")
        else:
            out.append(f"{request.hash} of {len(request.message)} bytes → digest\n", style="dim")
            out.append(request.digest.hex(), style="bold")
        self.query_one("#sign-digest", Static).update(out)
        self.query_one("#review", Button).disabled = isinstance(request, str)

    @on(Button.Pressed, "#review")
    def _review(self) -> None:
        request = self.request()
        if not isinstance(request, str):
            self.dismiss(request)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


def sign_confirmation(request: SignRequest) -> Text:
    """The confirmation body: what is signed, and the digest in full."""
    out = request.summary()
    out.append(request.digest.hex(), style="bold reverse")
    out.append("\n\nSigning cannot be undone: the request is recorded on the ledger and ")
    out.append(f"the signers of key {short(request.key.key_id)} will sign this digest.")
    return out
