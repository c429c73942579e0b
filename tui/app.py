"""The console app: wires the link to the node, the state and the screens together.

Messages from the link change `self.state` (plain Python, `tui.state`); what changed is
noted and acted on at most every REDRAW_INTERVAL_S: each changed area that is on screen
is redrawn once however many events changed it (the others when their tab is shown),
fetches are made once, and alerts become notices, a few at a time. Events are applied
DRAIN_BATCH at a time so that a key pressed meanwhile waits for a batch or a few, not
for the backlog. Actions live in `tui.operations`; what they need and why they cannot run in
`tui.actions`.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import tzinfo
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, get_args

from textual import events, on, work
from textual.app import SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen, Screen
from textual.widgets import TabbedContent
from textual.worker import Worker, WorkerState, WorkType

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
from tui.state import Area, Changes, ConsoleState, Fetch, Severity
from tui.widgets.base import AreaView

STYLES = Path(__file__).parent / "styles"
ALL_AREAS: set[Area] = set(get_args(Area))
KEYS = {a.key: a for a in ACTIONS}
MAIN_SCREEN_ONLY = {*BY_NAME, "help", "quit", "change_theme"}

#: Changes are drawn, fetched and notified at most this often (seconds): a burst of
#: events is one redraw of each area it changed.
REDRAW_INTERVAL_S = 0.2
#: Events applied in one turn of the event loop; a key pressed meanwhile is handled
#: between batches, not after the whole backlog.
DRAIN_BATCH = 250
#: Notices raised from the node's news that are on screen at once (each stays
#: NOTIFICATION_TIMEOUT s); beyond, they are counted and summed up in one notice (the
#: events behind them are in the Log). The operator's own actions, and the link going
#: down or up, are always noticed at once.
MAX_NOTICES = 5
#: Alerts waiting for the next flush; beyond, the oldest are counted, not kept.
MAX_PENDING_ALERTS = 20
#: How long the answers to the operator's requests stay (seconds): a failure longer.
ANSWER_TIMEOUT = {"information": 8.0, "warning": 12.0, "error": 20.0}
#: Where ctrl+s saves when neither --screenshot-dir nor the node's data directory is
#: known (relative to the working directory).
SCREENSHOTS = Path("screenshots")


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
        data_dir: Path | None = None,
        names: Mapping[str, str] | None = None,
        node_name: str | None = None,
        initial_tab: str = "peers",
    ) -> None:
        """`screenshot_dir`: where ctrl+s saves (else `<data_dir>/screenshots`, else
        ./screenshots); `names`: the validators' names by key or peer id (tui.names);
        `node_name`: this node's, if `names` lacks it (its config's name)."""
        super().__init__()
        self.state = ConsoleState(clock, tz)
        self.state.link.url = target.url
        self.state.names = dict(names or {})
        self.state.own_name = node_name
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
        self.poll_interval = poll_interval
        self.screenshot_dir = screenshot_dir
        self.data_dir = data_dir
        self.main = MainScreen(initial_tab)
        self.draws: Counter[Area] = Counter()  # redraws of each area (tests, benchmark)
        self._dirty: set[Area] = set()  # changed since the last flush
        self._stale: set[Area] = set()  # changed while its tab was not shown
        self._wanted: dict[Fetch, None] = {}  # fetches asked for since the last flush
        self._alerts: deque[tuple[Severity, str]] = deque(maxlen=MAX_PENDING_ALERTS)
        self._unnoticed = 0  # alerts not shown as notices (too many at once)
        self._noticed: deque[float] = deque()  # when the notices on screen were raised
        self._summary_due = False
        self._notices_queued = False  # notices posted, not yet received
        self._flush_pending = False
        self._last_flush = 0.0
        self._available: tuple[bool, ...] = ()  # the footer's actions when last drawn
        self._views: dict[Area, list[AreaView]] = {}
        self._screen_ready = False
        self._last_tick = 0.0
        self._fetching: set[tuple[str, str]] = set()
        self._again: set[tuple[str, str]] = set()

    def get_default_screen(self) -> Screen[Any]:
        return self.main

    def on_mount(self) -> None:
        self._run_link()
        self.set_interval(1.0, self._tick)
        if self.poll_interval is not None:  # what no event tells of: a deposit's depth
            self.set_interval(self.poll_interval, self._poll_shown)

    def on_ready(self) -> None:
        """The screen is composed: draw everything once, then only what changes."""
        self._screen_ready = True
        self.apply(Changes(set(ALL_AREAS)).merge(self.state.show_bridge(self._bridge_shown())))

    @work(exclusive=True, group="link", exit_on_error=False)
    async def _run_link(self) -> None:
        await self.link.run()

    def _tick(self) -> None:
        """Redraw what shows times relative to now (ages, elapsed, the rate)."""
        now = self.state.now()
        if now != self._last_tick:  # a stopped clock (tests, screenshots) changes nothing
            self._last_tick = now
            self.apply(Changes({"header", "sessions", "peers", "proofs"}))

    def _poll_shown(self) -> None:
        """Read again the bridge's views while the Bridge screen is shown (the link polls
        the other lists whatever is shown)."""
        fetches = self.state.bridge_fetches()
        if fetches:
            self.apply(Changes(fetch=fetches))

    def _bridge_shown(self) -> bool:
        return self.main.query_one("#tabs", TabbedContent).active == "bridge"

    # -- state changes and redraws ---------------------------------------------------------------
    def apply(self, changes: Changes, *, notify_now: bool = False) -> None:
        """Note what changed; it is acted on at the next flush. `notify_now`: the alerts
        answer the operator or tell of the link, shown at once whatever else is."""
        self._dirty |= changes.areas
        for key in changes.fetch:
            self._wanted[key] = None
        for severity, title, text in changes.answers:  # the operator's own: at once
            self.notify(text, title=title, severity=severity, timeout=ANSWER_TIMEOUT[severity])
        for severity, text in changes.alerts:
            if notify_now:
                self.notify(text, severity=severity)
                continue
            if len(self._alerts) == self._alerts.maxlen:
                self._unnoticed += 1
            self._alerts.append((severity, text))
        if self._dirty or self._wanted or self._alerts:
            self._schedule()

    def _schedule(self) -> None:
        """Flush once, now if the last flush is REDRAW_INTERVAL_S old, else when it is."""
        if self._flush_pending:
            return
        self._flush_pending = True
        delay = self._last_flush + REDRAW_INTERVAL_S - time.monotonic()
        if delay <= 0:
            self.call_later(self._flush_changes)
        else:
            self.set_timer(delay, self._flush_changes)

    def _flush_changes(self) -> None:
        self._flush_pending = False
        self._last_flush = time.monotonic()
        wanted, self._wanted = self._wanted, {}
        for kind, ident in coalesce_fetches(wanted):
            self.request_fetch(kind, ident)
        self._notify_alerts()
        if self._screen_ready:
            self._redraw()

    def _redraw(self) -> None:
        areas, self._dirty = self._dirty, set()
        if not self.is_running:
            # Shutting down: the panes are being torn down child first, so a pane may
            # already have lost its table (a tick or a link event can land here then).
            return
        shown = self._shown()
        self._stale |= areas - shown
        self._draw(areas & shown)
        available = tuple(not why_not(a.name, self.state) for a in ACTIONS)
        if available != self._available:  # the footer is rebuilt only when it changes
            self._available = available
            self.refresh_bindings()

    def _draw(self, areas: set[Area]) -> None:
        if not self._views:
            for widget in self.main.query("*"):
                if isinstance(widget, AreaView):
                    self._views.setdefault(widget.AREA, []).append(widget)
        for area in sorted(areas):
            for view in self._views.get(area, []):
                view.draw(self.state)
            self.draws[area] += 1

    def _shown(self) -> set[Area]:
        """The areas on screen: the header and the active tab's."""
        active = self.main.query_one("#tabs", TabbedContent).active
        return {"header", *(a for a in ALL_AREAS if a == active)}

    @on(TabbedContent.TabActivated)
    def _tab_shown(self) -> None:
        """A tab comes into view: draw it now if it changed while hidden."""
        if not self.is_running or not self._screen_ready:
            return
        self.apply(self.state.show_bridge(self._bridge_shown()))
        stale = self._stale & self._shown()
        if stale:
            self._stale -= stale
            self._draw(stale)

    def _notify_alerts(self) -> None:
        if self._alerts or self._unnoticed:  # `notify` posts: idle once they are in
            self._notices_queued = True
            self.call_later(self._notices_in)
        now = time.monotonic()
        while self._noticed and self._noticed[0] <= now - self.NOTIFICATION_TIMEOUT:
            self._noticed.popleft()
        while self._alerts:
            severity, text = self._alerts.popleft()
            if len(self._noticed) < MAX_NOTICES:
                self.notify(text, severity=severity)
                self._noticed.append(now)
            else:
                self._unnoticed += 1
        if not self._unnoticed:
            return
        if len(self._noticed) < MAX_NOTICES:
            n, self._unnoticed = self._unnoticed, 0
            more = f"{n} more alert{'s' if n > 1 else ''}: see the Log"
            self.notify(more, severity="warning")
            self._noticed.append(now)
        elif not self._summary_due:  # say so once a notice has gone
            self._summary_due = True
            self.set_timer(self._noticed[0] + self.NOTIFICATION_TIMEOUT - now, self._summary)

    def _notices_in(self) -> None:
        self._notices_queued = False

    def _summary(self) -> None:
        self._summary_due = False
        self._notify_alerts()

    def clear_notifications(self) -> None:
        super().clear_notifications()
        self._noticed.clear()

    @property
    def idle(self) -> bool:
        """Nothing fetched, queued or left to draw (tests and screenshots wait for it)."""
        return not (
            self._fetching
            or self._dirty
            or self._wanted
            or self._alerts
            or self._notices_queued
            or self._flush_pending
            or self.link.events
        )

    def request_fetch(self, kind: str, ident: str = "") -> None:
        """Fetch one resource; a fetch already under way is run once more when it ends."""
        key = (kind, ident)
        if not self.is_running:
            return  # shutting down: the worker would be cancelled before it ran
        if key in self._fetching:
            self._again.add(key)
            return
        self._fetching.add(key)

        # a function, not a coroutine: a worker cancelled before it runs (the app quits)
        # leaves no coroutine behind that was never awaited
        async def fetch() -> None:
            await self._fetch(key)

        work: WorkType[None] = fetch
        self.run_worker(
            work,
            group=f"fetch:{kind}:{ident}",
            exclusive=True,
            exit_on_error=False,
        )

    async def _fetch(self, key: tuple[str, str]) -> None:
        try:
            while True:
                self._again.discard(key)
                await self.link.fetch(*key)
                if key not in self._again:
                    return
        finally:
            # the answer is a message in the queue: the fetch is over once it is handled
            self.call_later(self._fetched, key)

    def _fetched(self, key: tuple[str, str]) -> None:
        self._fetching.discard(key)
        if key in self._again:  # asked for again after the last answer
            self._again.discard(key)
            self.request_fetch(*key)

    def _resume_from(self, status: dict[str, Any]) -> int | None:
        """Where to resume the event stream after (re)connecting."""
        new = Status.from_json(status)
        if self.state.restarted(new):
            self.state.last_seq = None
        return self.state.last_seq if self.state.last_seq is not None else new.event_seq

    # -- messages from the link ------------------------------------------------------------------
    # (the link's own news is noticed at once: it comes at most once per retry)
    def on_link_up(self, message: LinkUp) -> None:
        self.apply(self.state.link_up(message.url), notify_now=True)

    def on_link_down(self, message: LinkDown) -> None:
        self.apply(self.state.link_down(message.reason, message.retry_in), notify_now=True)

    def on_stream_down(self, message: StreamDown) -> None:
        self.apply(self.state.stream_down(message.reason, message.retry_in), notify_now=True)

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
        self.state.synced()
        self.apply(Changes(set(ALL_AREAS), fetch=self.state.bridge_fetches()))

    def on_events_waiting(self, message: EventsWaiting) -> None:
        """Apply up to DRAIN_BATCH events; ring again for the rest, from the event loop:
        posted from here, the doorbell would come back before any other task (the
        widgets handling a key, the screen painting) had run."""
        link = self.link
        link.rung = False
        for event in link.take(DRAIN_BATCH):
            try:
                changes = self.state.apply_event(event)
            except Exception as exc:  # a malformed event must not end the console
                self.state.note("error", f"could not use event {event!r:.120}: {exc!r}")
                changes = Changes({"log"})
            self.apply(changes)
        if link.events:
            asyncio.get_running_loop().call_soon(link.ring)

    def on_fetch_failed(self, message: FetchFailed) -> None:
        self.apply(self.state.fetch_failed(message.kind, message.reason, message.status))

    # -- messages from actions and widgets -------------------------------------------------------
    def on_action_done(self, message: ActionDone) -> None:
        changes = self.state.accepted(message.action, message.result, message.request)
        self.apply(changes, notify_now=True)

    def on_action_failed(self, message: ActionFailed) -> None:
        self.apply(self.state.refused(message.action, message.reason), notify_now=True)

    def on_key_selected(self, message: KeySelected) -> None:
        # the pane recorded the selection as the cursor moved (a message handled late must
        # not bring back an older choice): what shows it is drawn again
        self.apply(Changes({"keys"}))

    def on_signature_selected(self, message: SignatureSelected) -> None:
        self.apply(Changes({"keys"}))  # (as for the keys)

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

    def screenshots_dir(self) -> Path:
        """Where ctrl+s saves: --screenshot-dir, else `screenshots/` in the node's data
        directory, else `./screenshots/` (never the working directory itself)."""
        if self.screenshot_dir is not None:
            return self.screenshot_dir
        if self.data_dir is not None:
            return self.data_dir / "screenshots"
        return SCREENSHOTS

    def action_save_screenshot(self) -> None:
        directory = self.screenshots_dir().expanduser().absolute()
        try:
            directory.mkdir(parents=True, exist_ok=True)
            path = self.save_screenshot(path=str(directory))
        except OSError as exc:
            self.state.note("error", f"screenshot not saved in {directory}: {exc}")
            self.notify(str(exc), title="Screenshot not saved", severity="error", timeout=20)
        else:
            self.state.note("info", f"screenshot saved to {path}")
            self.notify(path, title="Screenshot saved", timeout=ANSWER_TIMEOUT["information"])
        self.apply(Changes({"log"}))


def coalesce_fetches(wanted: Iterable[Fetch]) -> list[Fetch]:
    """The fetches to make for `wanted`, in order, with the single blocks asked for
    ("blocks", height) fetched together as one range ("blocks", "first:last")."""
    out: list[Fetch] = []
    heights: list[int] = []
    for kind, ident in wanted:
        if kind == "blocks" and ident.isdigit():
            heights.append(int(ident))
        else:
            out.append((kind, ident))
    if len(heights) == 1:
        out.append(("blocks", str(heights[0])))
    elif heights:
        out.append(("blocks", f"{min(heights)}:{max(heights)}"))
    return out
