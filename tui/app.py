"""The console app: wires the link to the node, the state and the screens together.

Messages from the link change `self.state` (plain Python, `tui.state`); the areas that
changed are redrawn once per burst. Actions live in `tui.operations`; what they need
and why they cannot run in `tui.actions`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import tzinfo
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, get_args

from textual import events, work
from textual.app import SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen, Screen
from textual.worker import Worker, WorkerState

from tssnode.api.client import AsyncApiClient
from tui.actions import ACTIONS, BY_NAME, why_not
from tui.link import ClientFactory, NodeLink, Target
from tui.messages import (
    ActionDone,
    ActionFailed,
    BlockSelected,
    EventsWaiting,
    FetchFailed,
    KeySelected,
    LinkDown,
    LinkUp,
    SignatureSelected,
    Snapshot,
    StreamDown,
    StreamUp,
    Synced,
)
from tui.model import Status
from tui.operations import Operations
from tui.retry import Backoff
from tui.screens.help import HelpScreen
from tui.screens.main import TABS, MainScreen
from tui.state import Area, Changes, ConsoleState
from tui.widgets.base import AreaView

STYLES = Path(__file__).parent / "styles"
ALL_AREAS: set[Area] = set(get_args(Area))
KEYS = {a.key: a for a in ACTIONS}
MAIN_SCREEN_ONLY = {*BY_NAME, "help", "quit", "change_theme"}


class ConsoleApp(Operations):
    TITLE = "tssnode console"
    CSS_PATH = [  # noqa: RUF012 (Textual's class attribute)
        STYLES / "app.tcss",
        STYLES / "panes.tcss",
        STYLES / "dialogs.tcss",
    ]
    BINDINGS: ClassVar[list[BindingType]] = [
        *(Binding(a.key, a.name, a.label, tooltip=a.help) for a in ACTIONS),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
        Binding("t", "change_theme", "Theme"),
        Binding("ctrl+s", "save_screenshot", "Screenshot"),
    ]

    def __init__(
        self,
        target: Target,
        *,
        factory: ClientFactory = AsyncApiClient,
        clock: Callable[[], float] = time.time,
        tz: tzinfo | None = None,
        poll_interval: float | None = 2.0,
        backoff: Backoff | None = None,
        link_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        animations: bool = True,
        screenshot_dir: Path | None = None,
        initial_tab: str = "peers",
    ) -> None:
        super().__init__()
        self.state = ConsoleState(clock, tz)
        self.state.link.url = target.url
        self.link = NodeLink(
            target,
            self.post_message,
            factory=factory,
            backoff=backoff,
            poll_interval=poll_interval,
            resume_from=self._resume_from,
            sleep=link_sleep,
        )
        if not animations:
            self.animation_level = "none"
        self.screenshot_dir = screenshot_dir
        self.main = MainScreen(initial_tab)
        self._dirty: set[Area] = set()
        self._flush_pending = False
        self._screen_ready = False
        self._last_tick = 0.0
        self._fetching: set[tuple[str, str]] = set()
        self._again: set[tuple[str, str]] = set()

    def get_default_screen(self) -> Screen[Any]:
        return self.main

    def on_mount(self) -> None:
        self._run_link()
        self.set_interval(1.0, self._tick)

    def on_ready(self) -> None:
        """The screen is composed: draw everything once, then only what changes."""
        self._screen_ready = True
        self.apply(Changes(set(ALL_AREAS)))

    @work(exclusive=True, group="link", exit_on_error=False)
    async def _run_link(self) -> None:
        await self.link.run()

    def _tick(self) -> None:
        """Redraw what shows times relative to now (ages, elapsed, the rate)."""
        now = self.state.now()
        if now != self._last_tick:  # a stopped clock (tests, screenshots) changes nothing
            self._last_tick = now
            self.apply(Changes({"header", "sessions", "peers", "proofs"}))

    # -- state changes and redraws ---------------------------------------------------------------
    def apply(self, changes: Changes) -> None:
        for severity, text in changes.alerts:
            self.notify(text, severity=severity)
        for kind, ident in changes.fetch:
            self.request_fetch(kind, ident)
        if changes.areas:
            self._dirty |= changes.areas
            if self._screen_ready and not self._flush_pending:
                self._flush_pending = True
                self.call_later(self._redraw)

    def _redraw(self) -> None:
        self._flush_pending = False
        areas, self._dirty = self._dirty, set()
        if not self.is_running:
            # Shutting down: the panes are being torn down child first, so a pane may
            # already have lost its table (a tick or a link event can land here then).
            return
        for widget in self.main.query("*"):
            if isinstance(widget, AreaView) and widget.AREA in areas:
                widget.draw(self.state)
        self.refresh_bindings()

    @property
    def idle(self) -> bool:
        """Nothing fetched, queued or left to draw (tests and screenshots wait for it)."""
        return not (self._fetching or self._dirty or self._flush_pending or self.link.events)

    def request_fetch(self, kind: str, ident: str = "") -> None:
        """Fetch one resource; a fetch already under way is run once more when it ends."""
        key = (kind, ident)
        if key in self._fetching:
            self._again.add(key)
            return
        self._fetching.add(key)
        self.run_worker(
            self._fetch(key), group=f"fetch:{kind}:{ident}", exclusive=True, exit_on_error=False
        )

    async def _fetch(self, key: tuple[str, str]) -> None:
        try:
            while True:
                self._again.discard(key)
                await self.link.fetch(*key)
                if key not in self._again:
                    return
        finally:
            self._fetching.discard(key)

    def _resume_from(self, status: dict[str, Any]) -> int | None:
        """Where to resume the event stream after (re)connecting."""
        new = Status.from_json(status)
        if self.state.restarted(new):
            self.state.last_seq = None
        return self.state.last_seq if self.state.last_seq is not None else new.event_seq

    # -- messages from the link ------------------------------------------------------------------
    def on_link_up(self, message: LinkUp) -> None:
        self.apply(self.state.link_up(message.url))

    def on_link_down(self, message: LinkDown) -> None:
        self.apply(self.state.link_down(message.reason, message.retry_in))

    def on_stream_down(self, message: StreamDown) -> None:
        self.apply(self.state.stream_down(message.reason, message.retry_in))

    def on_stream_up(self, message: StreamUp) -> None:
        self.apply(self.state.stream_up())

    def on_snapshot(self, message: Snapshot) -> None:
        try:
            changes = self.state.apply_snapshot(message.kind, message.data, message.ident)
        except Exception as exc:  # a malformed answer must not end the console
            self.state.note("error", f"could not use GET {message.kind}: {exc!r}")
            changes = Changes({"log"})
        self.apply(changes)
        if message.kind == "status":
            for sig in list(self.state.signatures.values()):
                if sig.status == "pending":
                    self.request_fetch("signature", sig.signature_id)

    def on_synced(self, message: Synced) -> None:
        self.state.link.synced = True
        self.apply(Changes(set(ALL_AREAS)))

    def on_events_waiting(self, message: EventsWaiting) -> None:
        changes = Changes()
        while self.link.events:
            event = self.link.events.popleft()
            try:
                changes.merge(self.state.apply_event(event))
            except Exception as exc:  # a malformed event must not end the console
                self.state.note("error", f"could not use event {event!r:.120}: {exc!r}")
                changes.areas.add("log")
        self.apply(changes)

    def on_fetch_failed(self, message: FetchFailed) -> None:
        self.state.note("warning", f"GET {message.kind}: {message.reason}")
        self.apply(Changes({"log"}))

    # -- messages from actions and widgets -------------------------------------------------------
    def on_action_done(self, message: ActionDone) -> None:
        self.apply(self.state.accepted(message.action, message.result, message.request))

    def on_action_failed(self, message: ActionFailed) -> None:
        self.apply(self.state.refused(message.action, message.reason))

    def on_key_selected(self, message: KeySelected) -> None:
        self.state.selected_key = message.key_id
        self.apply(Changes({"keys"}))

    def on_signature_selected(self, message: SignatureSelected) -> None:
        self.state.selected_signature = message.signature_id
        self.apply(Changes({"keys"}))

    def on_block_selected(self, message: BlockSelected) -> None:
        self.state.selected_block = message.height
        block = self.state.blocks.get(message.height)
        if block is not None and not block.full and self.state.link.connected:
            self.request_fetch("block", str(message.height))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            error = event.worker.error
            self.state.note("error", f"{event.worker.name} failed: {error!r}")
            self.notify(str(error), title="internal error (see Log)", severity="error")
            self.apply(Changes({"log"}))

    # -- actions: availability, palette, help ----------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if isinstance(self.screen, ModalScreen) and action in MAIN_SCREEN_ONLY:
            return False  # behind a dialog, a stray key must not start anything (or quit)
        if action in BY_NAME:
            return None if why_not(action, self.state) else True
        return True

    def on_key(self, event: events.Key) -> None:
        """A greyed-out action's key says why it cannot run."""
        action = KEYS.get(event.key)
        if action is None or isinstance(self.screen, ModalScreen):
            return
        reason = why_not(action.name, self.state)
        if reason:
            self.notify(reason, title=f"{action.title}: not now", severity="warning")

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        for command in super().get_system_commands(screen):
            if command.title != "Screenshot":
                yield command
        for a in ACTIONS:
            reason = why_not(a.name, self.state)
            help_text = f"{a.help} [{a.key}]"
            if reason:
                help_text += f" · unavailable: {reason}"
            yield SystemCommand(a.title, help_text, partial(self._from_palette, a.name))
        for i, (tab, title, _) in enumerate(TABS, start=1):
            yield SystemCommand(
                f"Show {title}",
                f"the {title} screen [{i}]",
                partial(self.main.action_show_tab, tab),
            )
        yield SystemCommand("Help", "every key, and why an action cannot run [?]", self.action_help)
        yield SystemCommand(
            "Save screenshot", "save an SVG of the screen [ctrl+s]", self.action_save_screenshot
        )

    def _from_palette(self, name: str) -> None:
        reason = why_not(name, self.state)
        if reason:
            self.notify(reason, title=f"{BY_NAME[name].title}: not now", severity="warning")
            return
        getattr(self, f"action_{name}")()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.state))

    def action_save_screenshot(self) -> None:
        directory = str(self.screenshot_dir) if self.screenshot_dir else None
        path = self.save_screenshot(path=directory)
        self.state.note("info", f"screenshot saved to {path}")
        self.notify(f"saved {path}", title="screenshot")
        self.apply(Changes({"log"}))
