"""The header: which node, which network, where the chain is, and a health colour."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tui.model import short_peer
from tui.state import ConsoleState
from tui.widgets.base import AreaView

HEALTH_CLASSES = ("-connecting", "-ok", "-degraded", "-down")
#: the header's words for warnings the node is known to give (the tooltip, the log and a
#: notification have the whole sentence)
SHORT_WARNINGS = {
    "vault key stored in the data directory (insecure_local_key)": "insecure vault key",
}
DOT = {"connecting": "◌", "ok": "●", "degraded": "◐", "down": "○"}
WARNING_STYLE = "bold black on yellow"


class NodeHeader(AreaView, Static):
    """One line: health, node name and id, network, height, view, primary, peers,
    version; the words shrink to fit 80 columns. What the node warns of (`/status`
    "warnings", e.g. a vault key in its data directory) is marked in black on yellow
    whatever the health, and spelt out in the tooltip. Until the node's state is loaded
    once it is neutral ("connecting…"), neither red nor green: there is no health to
    show yet."""

    AREA = "header"

    def draw(self, state: ConsoleState) -> None:
        health, reason = state.health()
        for cls in HEALTH_CLASSES:
            self.set_class(cls == f"-{health}", cls)
        warnings = state.status.warnings if state.status and state.link.connected else ()
        self.tooltip = "\n".join([reason, *(f"⚠ {w}" for w in warnings)])
        self.update(header_text(state, self.size.width or 80))

    def on_resize(self) -> None:
        state = getattr(self.app, "state", None)
        if isinstance(state, ConsoleState):
            self.draw(state)


def header_text(state: ConsoleState, width: int) -> Text:
    """The widest form that fits in `width` cells."""
    for wide in (True, False):
        text = _header(state, wide)
        if text.cell_len <= width - 2:
            return text
    text.truncate(width - 2, overflow="ellipsis")
    return text


def _header(state: ConsoleState, wide: bool) -> Text:
    health, reason = state.health()
    out = Text(no_wrap=True)
    out.append(f"{DOT[health]} ", style="bold")
    st = state.status
    if health == "connecting":
        return _connecting(out, state, wide)
    if not state.link.connected:
        out.append("disconnected", style="bold")
        retry = state.link.retry_at
        if retry is not None:
            out.append(f" · retry in {max(0.0, retry - state.now()):.0f}s")
        if state.link.attempts:
            out.append(f" (attempt {state.link.attempts})")
        out.append(f" · {reason}")
        if st and wide:
            out.append(f" · last seen: {short_peer(st.peer_id)} at height {st.height}")
        return out
    if st is None:  # not reached: without a status the header is "connecting"
        return out
    if st.warnings:  # first: what is unsafe must not be cut off
        text = SHORT_WARNINGS.get(st.warnings[0], st.warnings[0])
        more = f" (+{len(st.warnings) - 1})" if len(st.warnings) > 1 else ""
        out.append(f"⚠ {text}{more}", style=WARNING_STYLE)
        out.append(" │ ")
    if health != "ok" and not wide:  # narrow: the reason first, the rest may be cut
        out.append(f"{reason} │ ", style="bold")
    name = state.name_of(st.peer_id)
    if wide:
        if name:
            out.append(f"{name} ", style="bold")
        out.append(short_peer(st.peer_id), style="bold")
    else:
        out.append(state.party(st.peer_id), style="bold")
    out.append(f"  {st.network}")
    for label, value in (
        ("height" if wide else "h", str(st.height)),
        ("view" if wide else "v", str(st.view)),
        ("primary", "me" if st.is_primary else state.party(st.primary)),
    ):
        out.append(f"  {label} ", style="dim")
        out.append(value, style="bold")
    online, n, _ = state.quorum()
    out.append("  peers ", style="dim")
    out.append(str(st.peers_connected), style="bold")
    if wide:
        out.append("  validators online ", style="dim")
        out.append(f"{online}/{n}", style="bold")
    if health != "ok" and wide:
        out.append(f"  {reason}", style="bold")
    if wide:
        out.append(f"  v{st.version}", style="dim")
    return out


def _connecting(out: Text, state: ConsoleState, wide: bool) -> Text:
    """Before the node's state is loaded once: where the console is connecting, and how
    the attempts went (their failures are said, but not as a health)."""
    st = state.status
    link = state.link
    if st is not None:
        if st.warnings and link.connected:  # what is unsafe, from the first status on
            out.append(f"⚠ {SHORT_WARNINGS.get(st.warnings[0], st.warnings[0])}", WARNING_STYLE)
            out.append(" │ ")
        name = state.name_of(st.peer_id)
        out.append(f"{name} " if name else "", style="bold")
        out.append(short_peer(st.peer_id), style="bold")
        out.append(f"  {st.network}" if wide else "")
        out.append("  loading…" if link.connected else "  connecting…", style="italic")
    else:
        out.append("connecting…", style="bold italic")
        if wide or not link.attempts:
            out.append(f" {link.url}", style="dim")
    if not link.connected and link.attempts:
        out.append(f" · attempt {link.attempts} failed")
        if link.retry_at is not None:
            out.append(f" · retry in {max(0.0, link.retry_at - state.now()):.0f}s")
        out.append(f" · {link.reason}")
    return out
