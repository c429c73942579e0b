"""A node's data directory: its identity (the libp2p key that is also its validator
key), its API token and, for throw-away local nodes only, a vault key file.

`tssnode init`, `tssnode run` and `tssnode cluster up` make these through
`init_data_dir`, and so do the local test networks (`tssnode.testing.cluster`): one
function, below the CLI and the test harness that both use it.
"""

from __future__ import annotations

import secrets
from pathlib import Path


def init_data_dir(data_dir: Path, *, local_key: bool = False) -> dict[str, str]:
    """Create the identity and API token of a data directory (idempotent). Never a vault
    key, unless `local_key`: then a random `vault.key` in the directory (mode 0600), which
    only a node with `[vault] insecure_local_key = true` accepts."""
    from tssnode.net import identity as identity_mod

    ident, _ = identity_mod.load_or_create(data_dir)
    ensure_token(data_dir)
    info = {
        "data_dir": str(data_dir),
        "peer_id": ident.peer_id_text,
        "validator_key": ident.key.public_bytes().hex(),
    }
    if local_key:
        from tssnode.node.vaultkey import local_key_path, write_secret_file

        path = local_key_path(data_dir)
        if not path.exists():
            write_secret_file(path, secrets.token_urlsafe(32).encode() + b"\n", overwrite=False)
        info["vault_key"] = str(path)
    return info


def new_token() -> str:
    return secrets.token_urlsafe(32)


def ensure_token(data_dir: Path) -> str:
    """The API token of this data directory, created (mode 0600) on first start."""
    path = data_dir / "api.token"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    token = new_token()
    path.touch(mode=0o600)
    path.write_text(token + "\n")
    return token
