"""BIP-32 paths as the node accepts them for derivation: 'm' then non-hardened indices
('m/0/1'). Checked in the console so a typo is caught before a request. No Textual here."""

from __future__ import annotations

HARDENED = 1 << 31


class PathError(ValueError):
    """A derivation path the node would refuse."""


def parse_path(path: str) -> tuple[int, ...]:
    parts = path.strip().split("/")
    if parts[0] != "m":
        raise PathError("a derivation path starts with 'm', like m/0/1")
    out: list[int] = []
    for part in parts[1:]:
        if part.endswith(("'", "h", "H")):
            raise PathError("hardened indices need the whole secret key: not possible here")
        if not part.isdigit() or (len(part) > 1 and part[0] == "0"):
            raise PathError(f"{part!r} is not an index (0, 1, 2, …)")
        index = int(part)
        if index >= HARDENED:
            raise PathError("an index must be below 2^31")
        out.append(index)
    return tuple(out)
