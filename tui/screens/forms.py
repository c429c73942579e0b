"""Two small dialogs: the path of a child key to derive, and how many presignatures to
make."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from tui.model import Key, short
from tui.paths import PathError, parse_path

MAX_PRESIGN = 100  # the API's limit for one request


def check_count(text: str) -> int | str:
    try:
        count = int(text)
    except ValueError:
        return "a whole number"
    if not 1 <= count <= MAX_PRESIGN:
        return f"from 1 to {MAX_PRESIGN}"
    return count


def check_path(text: str) -> str | None:
    """None if the node would accept `text` as a derivation path, else why not."""
    try:
        path = parse_path(text)
    except PathError as exc:
        return str(exc)
    return None if path else "give at least one index after m (m/0)"


class _OneField(ModalScreen[str | None]):
    """A dialog with one validated input."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]
    TITLE_TEXT = ""
    OK_LABEL = "OK"

    def __init__(self, key: Key, value: str, placeholder: str) -> None:
        super().__init__(classes="dialog-screen")
        self.key = key
        self.value = value
        self.placeholder = placeholder

    def describe(self) -> Text:
        raise NotImplementedError

    def problem(self, text: str) -> str | None:
        raise NotImplementedError

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog small"):
            yield Static(self.TITLE_TEXT, classes="dialog-title")
            yield Static(self.describe())
            yield Input(self.value, placeholder=self.placeholder, id="field", compact=True)
            yield Static("", id="field-problem")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button(self.OK_LABEL, id="ok", variant="primary")

    def on_mount(self) -> None:
        field = self.query_one("#field", Input)
        if self.app.animation_level == "none":
            field.cursor_blink = False
        field.focus()
        self._check()

    @on(Input.Changed, "#field")
    def _check(self) -> None:
        problem = self.problem(self.query_one("#field", Input).value)
        self.query_one("#field-problem", Static).update(Text(problem or "", style="bold red"))
        self.query_one("#ok", Button).disabled = problem is not None

    @on(Input.Submitted, "#field")
    @on(Button.Pressed, "#ok")
    def _ok(self) -> None:
        value = self.query_one("#field", Input).value.strip()
        if self.problem(value) is None:
            self.dismiss(value)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class DeriveModal(_OneField):
    TITLE_TEXT = "Derive a child key"
    OK_LABEL = "Derive"

    def __init__(self, key: Key) -> None:
        super().__init__(key, f"m/{len(key.children)}", "m/0/1")

    def describe(self) -> Text:
        out = Text(f"Public BIP-32 derivation from key {short(self.key.key_id)}. ")
        out.append("Non-hardened indices only; the same shares sign for the child.", style="dim")
        return out

    def problem(self, text: str) -> str | None:
        return check_path(text)


class PresignModal(_OneField):
    TITLE_TEXT = "Top up presignatures"
    OK_LABEL = "Continue…"

    def __init__(self, key: Key) -> None:
        super().__init__(key, "5", "count")

    def describe(self) -> Text:
        out = Text(f"Key {short(self.key.key_id)} has ")
        out.append(str(self.key.presignatures), style="bold")
        out.append(" presignatures. How many more should its signers make?")
        return out

    def problem(self, text: str) -> str | None:
        count = check_count(text)
        return count if isinstance(count, str) else None
