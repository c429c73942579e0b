"""The keygen dialog: the threshold and the parties of a new key."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, SelectionList, Static
from textual.widgets.selection_list import Selection

from tui.model import Validator, short_peer


@dataclass(frozen=True)
class KeygenRequest:
    threshold: int
    parties: tuple[str, ...]
    all_validators: bool  # send parties = null: every validator

    def body(self) -> dict[str, object]:
        body: dict[str, object] = {
            "threshold": self.threshold,
            "parties": None if self.all_validators else list(self.parties),
        }
        if self.threshold == 0:  # the API wants this asked for explicitly: the summary
            body["single_signer"] = True  # warns, and the operator confirms it
        return body

    def summary(self, label: Callable[[str], str] = short_peer) -> Text:
        """What the confirmation says; `label` names a party (by its peer id)."""
        out = Text()
        out.append("A KeyGen transaction goes to the ledger. Once committed, ")
        out.append(f"{len(self.parties)} parties", style="bold")
        out.append(" run CGGMP21 keygen and aux-info for a key with threshold ")
        out.append(str(self.threshold), style="bold")
        out.append(": any ")
        out.append(f"{self.threshold + 1} of {len(self.parties)}", style="bold")
        out.append(" will sign.\nParties: ")
        if self.threshold == 0:
            out = Text.assemble(
                out[: len(out.plain) - len("\nParties: ")],
                (" Threshold 0: ANY ONE party can sign alone.", "bold red"),
                "\nParties: ",
            )
        out.append(", ".join(label(p) for p in self.parties))
        out.append("\nThe transaction cannot be withdrawn once sent.", style="bold")
        return out


def check_keygen(threshold_text: str, parties: Sequence[str]) -> tuple[int | None, str]:
    """(threshold, message): the threshold if the choice is valid, and what it means or
    what is wrong with it."""
    n = len(parties)
    if n < 2:
        return None, "choose at least two parties"
    try:
        t = int(threshold_text)
    except ValueError:
        return None, "the threshold is a whole number"
    if not 0 <= t < n:
        return None, f"the threshold must be from 0 to {n - 1} with {n} parties"
    return t, f"any {t + 1} of the {n} parties will sign"


class KeygenModal(ModalScreen[KeygenRequest | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self,
        validators: Sequence[Validator],
        me: str | None,
        name: Callable[[Validator], str | None] = lambda v: v.name,
    ) -> None:
        super().__init__(classes="dialog-screen")
        self.validators = list(validators)
        self.me = me
        self.name_of = name

    def compose(self) -> ComposeResult:
        n = len(self.validators)
        names = {v.peer_id: self.name_of(v) or "" for v in self.validators}
        width = max((len(name) for name in names.values()), default=0)
        with Vertical(classes="dialog", id="keygen-dialog"):
            yield Static("Start keygen", classes="dialog-title")
            with Horizontal(classes="field"):
                yield Label("Threshold t ")
                yield Input(str(n // 2), id="threshold", type="integer", max_length=3, compact=True)
            yield Static("", id="keygen-meaning")
            yield Label("Parties (space toggles)")
            yield SelectionList[str](
                *(
                    Selection(
                        f"#{v.index:<2} "
                        + (f"{names[v.peer_id]:<{width}}  " if width else "")
                        + short_peer(v.peer_id)
                        + ("  (me)" if v.peer_id == self.me else "")
                        + ("  offline" if v.status == "offline" else ""),
                        v.peer_id,
                        True,
                    )
                    for v in self.validators
                ),
                id="parties",
            )
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Continue…", id="continue", variant="primary")

    def on_mount(self) -> None:
        if self.app.animation_level == "none":
            self.query_one("#threshold", Input).cursor_blink = False
        self.query_one("#threshold", Input).focus()
        self._check()

    def _chosen(self) -> list[str]:
        chosen = set(self.query_one("#parties", SelectionList).selected)
        return [v.peer_id for v in self.validators if v.peer_id in chosen]

    @on(Input.Changed, "#threshold")
    @on(SelectionList.SelectedChanged, "#parties")
    def _check(self) -> None:
        t, message = check_keygen(self.query_one("#threshold", Input).value, self._chosen())
        meaning = self.query_one("#keygen-meaning", Static)
        meaning.update(Text(message, style="green" if t is not None else "bold red"))
        self.query_one("#continue", Button).disabled = t is None

    @on(Input.Submitted, "#threshold")
    @on(Button.Pressed, "#continue")
    def _continue(self) -> None:
        parties = self._chosen()
        t, _ = check_keygen(self.query_one("#threshold", Input).value, parties)
        if t is None:
            return
        everyone = len(parties) == len(self.validators)
        self.dismiss(KeygenRequest(t, tuple(parties), everyone))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
