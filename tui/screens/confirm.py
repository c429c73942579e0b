"""Confirmation for anything irreversible: says exactly what will happen. The confirm
button is the default: it has the focus and is marked (⏎), so Enter confirms; Escape
(or the Cancel button, Tab then Enter) cancels, and the app says that nothing was sent."""

from __future__ import annotations

from typing import ClassVar

from rich.console import RenderableType
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ConfirmModal(ModalScreen[bool]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        # Enter on a button presses that button (the focused one); with the focus
        # elsewhere (the body was clicked) it confirms, as the marked default says
        Binding("enter", "confirm", "Confirm", show=False),
    ]

    def __init__(self, title: str, body: RenderableType, confirm: str = "Confirm") -> None:
        super().__init__(classes="dialog-screen")
        self.title_text = title
        self.body = body
        self.confirm_label = confirm

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="confirm-dialog"):
            yield Static(self.title_text, classes="dialog-title")
            yield Static(self.body, id="confirm-body")
            with Horizontal(classes="buttons"):
                yield Static(confirm_hint(self.confirm_label), id="confirm-hint", classes="hint")
                yield Button("Cancel", id="cancel")
                yield Button(
                    f"{self.confirm_label} ⏎", id="confirm", variant="warning", classes="default"
                )

    def on_mount(self) -> None:
        self.query_one("#confirm", Button).focus()

    @on(Button.Pressed, "#confirm")
    def action_confirm(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(False)


def confirm_hint(label: str) -> Text:
    out = Text()
    out.append("enter", style="bold")
    out.append(f" {label.lower()} · ")
    out.append("esc", style="bold")
    out.append(" cancel")
    return out
