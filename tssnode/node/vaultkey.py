"""Where a node's vault passphrase comes from; opening the vault with it; changing it.

The passphrase that seals the key shares at rest (`tssnode.store.sealing`) is taken, in
this order, from

1. the environment variable `TSSNODE_PASSPHRASE`;
2. `[vault] passphrase_file`: the file's contents;
3. `[vault] passphrase_command`: the standard output of a program run without a shell
   (standard input closed, standard error passed through), which must exit 0 within
   `[vault] command_timeout` seconds and print something.

Each is stripped of surrounding whitespace. A key kept inside the data directory is
refused, whoever copies the directory would have the shares: a `vault.key` (or
`vault.key.new`) lying there, or a passphrase file that resolves into it. With
`[vault] insecure_local_key = true` (throw-away local networks: `configs/local`) both are
allowed, and a node given none of the three keeps a random key in `<data_dir>/vault.key`
(mode 0600; made only for a data directory whose secrets are not sealed yet). Whenever
the key in use lies in the data directory the node says so: a WARNING at start-up and
`INSECURE_WARNING` in `OpenVault.warnings` (the API's `/status` shows it, the console
too).

A passphrase that does not open the secrets is the store's `WrongPassphrase`, raised by
`unlock` before anything else starts and before anything is written; every other reason
for having no passphrase is `VaultKeyError`. Messages name variables, files and
programs, never a secret; nothing here logs one.

`rekey` changes the passphrase with `tssnode.store.sealing.rekey` (one atomic batch). For
a new local key (`insecure_local_key`) the order is what keeps a crash harmless: the new
key is written to `vault.key.new` and fsynced, the batch is committed, and only then is
`vault.key.new` renamed over `vault.key`. A crash before the commit leaves the old key
opening the store; a crash after it leaves the new key in `vault.key.new`. Keeping two
check values instead would not help: the records themselves are sealed under one key.
So opening a local key with `vault.key.new` present tries `vault.key` first (and drops
the stale new file if it opens the store), else the new file (and finishes the rename).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shlex
import stat
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tssnode.config import NodeConfig, inside
from tssnode.errors import TssError
from tssnode.store import LevelStore, WrongPassphrase, layout
from tssnode.store import sealing as sealing_mod
from tssnode.store.sealing import DEFAULT_LOG2_N, Sealer
from tssnode.store.vault import Vault

log = logging.getLogger("tssnode.vault")

PASSPHRASE_ENV = "TSSNODE_PASSPHRASE"
NEW_PASSPHRASE_ENV = "TSSNODE_NEW_PASSPHRASE"
LOCAL_KEY = "vault.key"
PENDING_KEY = "vault.key.new"
INSECURE_WARNING = "vault key stored in the data directory (insecure_local_key)"
#: a passphrase file larger than this is not one
MAX_PASSPHRASE_BYTES = 64 * 1024


class VaultKeyError(TssError):
    """No usable vault passphrase: none given, refused, unreadable, or a failing command."""


@dataclass(frozen=True, repr=False)
class Passphrase:
    """A passphrase and where it came from (for messages; never the secret itself)."""

    secret: bytes
    source: str
    #: the key lies in the data directory (allowed by insecure_local_key only)
    local: bool = False

    def __repr__(self) -> str:
        return f"Passphrase(from {self.source}, hidden)"


@dataclass
class OpenVault:
    """The node's store, opened, and its vault, unlocked."""

    store: LevelStore
    vault: Vault
    source: str
    insecure: bool = False
    warnings: list[str] = field(default_factory=list)

    def close(self) -> None:
        self.store.close()


def local_key_path(data_dir: Path) -> Path:
    return Path(data_dir) / LOCAL_KEY


def pending_key_path(data_dir: Path) -> Path:
    return Path(data_dir) / PENDING_KEY


def _no_passphrase(config: NodeConfig) -> VaultKeyError:
    return VaultKeyError(
        f"no vault passphrase: set {PASSPHRASE_ENV}, or [vault] passphrase_file or "
        f"passphrase_command in {config.source} (for a throw-away local node only: "
        "[vault] insecure_local_key = true keeps a key in the data directory)"
    )


# -- reading a passphrase ---------------------------------------------------------------------


def from_env(name: str, env: Mapping[str, str]) -> Passphrase | None:
    """The passphrase in environment variable `name`, None when it is not set."""
    value = env.get(name)
    if value is None:
        return None
    secret = os.fsencode(value).strip()
    if not secret:
        raise VaultKeyError(f"{name} is set but empty")
    return Passphrase(secret, name)


def from_file(path: Path, data_dir: Path, *, allow_inside: bool, what: str) -> Passphrase:
    """The passphrase in file `path` (refused inside `data_dir` unless `allow_inside`)."""
    local = inside(path, data_dir)
    if local and not allow_inside:
        raise VaultKeyError(
            f"{what} {path} is inside the data directory {data_dir}: whoever copies the "
            "directory would have the key; keep it elsewhere (or, for a throw-away local "
            "node only, set [vault] insecure_local_key = true)"
        )
    try:
        with open(path, "rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            if not stat.S_ISREG(mode):
                raise VaultKeyError(f"{what} {path} is not a regular file")
            data = f.read(MAX_PASSPHRASE_BYTES + 1)
    except FileNotFoundError:
        raise VaultKeyError(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise VaultKeyError(f"cannot read {what} {path}: {exc.strerror}") from None
    if len(data) > MAX_PASSPHRASE_BYTES:
        raise VaultKeyError(f"{what} {path} is larger than {MAX_PASSPHRASE_BYTES} bytes")
    if mode & 0o077:
        log.warning(
            "%s %s is readable by group or others (mode %o); 0600 or 0400 is safer",
            what, path, stat.S_IMODE(mode),
        )  # fmt: skip
    secret = data.strip()
    if not secret:
        raise VaultKeyError(f"{what} {path} is empty")
    return Passphrase(secret, f"{what} {path}", local=local)


def from_command(argv: Sequence[str], *, timeout: float, what: str) -> Passphrase:
    """The standard output of `argv` (no shell), which must exit 0 within `timeout` s."""
    program = argv[0]
    env = {k: v for k, v in os.environ.items() if k not in (PASSPHRASE_ENV, NEW_PASSPHRASE_ENV)}
    try:
        done = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            timeout=timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise VaultKeyError(f"{what} ({program}) did not finish within {timeout:g} s") from None
    except OSError as exc:
        raise VaultKeyError(f"cannot run {what} ({program}): {exc.strerror}") from None
    if done.returncode != 0:
        raise VaultKeyError(f"{what} ({program}) failed with exit code {done.returncode}")
    secret = done.stdout.strip()
    if not secret:
        raise VaultKeyError(f"{what} ({program}) printed no passphrase")
    return Passphrase(secret, f"{what} ({program})")


def configured(config: NodeConfig, env: Mapping[str, str] | None = None) -> Passphrase | None:
    """The passphrase from the environment or the config file, None if neither gives one
    (the local key file is not looked at here)."""
    env = os.environ if env is None else env
    vault = config.vault
    found = from_env(PASSPHRASE_ENV, env)
    if found is not None:
        return found
    if vault.passphrase_file is not None:
        return from_file(
            vault.passphrase_file,
            config.data_dir,
            allow_inside=vault.insecure_local_key,
            what="[vault] passphrase_file",
        )
    if vault.passphrase_command is not None:
        return from_command(
            vault.passphrase_command,
            timeout=vault.command_timeout,
            what="[vault] passphrase_command",
        )
    return None


def check_data_dir(config: NodeConfig) -> None:
    """Refuse a vault key lying in the data directory, unless insecure_local_key."""
    if config.vault.insecure_local_key:
        return
    for path in (local_key_path(config.data_dir), pending_key_path(config.data_dir)):
        if path.exists():
            raise VaultKeyError(
                f"{path} is a vault key inside the data directory: whoever copies the "
                "directory would have the key shares. Move it out of the directory and "
                f"name it in [vault] passphrase_file (or pass it in {PASSPHRASE_ENV}); for a "
                "throw-away local node only, set [vault] insecure_local_key = true in "
                f"{config.source}"
            )


# -- opening ----------------------------------------------------------------------------------


def unlock(
    config: NodeConfig, env: Mapping[str, str] | None = None, *, log2_n: int = DEFAULT_LOG2_N
) -> OpenVault:
    """Open the data directory's store and unlock its vault, or fail before anything is
    written: `VaultKeyError` (no usable passphrase), `WrongPassphrase`, `StoreLocked` (the
    node, or a rekey, holds the store). `log2_n` is the scrypt cost of a new store."""
    check_data_dir(config)
    given = configured(config, env)
    if given is None and not config.vault.insecure_local_key:
        raise _no_passphrase(config)
    where = str(config.data_dir)
    store = LevelStore(config.data_dir / "ledger.db")
    try:
        if given is not None:
            sealer = Sealer.open(store, given.secret, where=where, log2_n=log2_n)
            passphrase = given
        else:
            sealer, passphrase = _open_local(store, config, log2_n)
    except BaseException:
        store.close()
        raise
    opened = OpenVault(store, Vault(store, sealer), passphrase.source, passphrase.local)
    if passphrase.local:
        opened.warnings.append(INSECURE_WARNING)
        log.warning(
            "%s: %s is inside the data directory; whoever copies %s can open its key "
            "shares. Use it for throw-away local networks only.",
            INSECURE_WARNING, passphrase.source, config.data_dir,
        )  # fmt: skip
    else:
        log.info("vault unlocked with the passphrase from %s", passphrase.source)
    return opened


def _read_local(path: Path) -> Passphrase:
    return from_file(path, path.parent, allow_inside=True, what="the local vault key")


def _open_local(store: LevelStore, config: NodeConfig, log2_n: int) -> tuple[Sealer, Passphrase]:
    """The sealer of the local key file (insecure_local_key), made for a new data
    directory; finishes or rolls back a rekey that a crash interrupted (module docstring)."""
    key, pending = local_key_path(config.data_dir), pending_key_path(config.data_dir)
    where = str(config.data_dir)
    if not key.exists() and not pending.exists():
        if store.get(layout.meta("sealing")) is not None:
            raise VaultKeyError(
                f"{key} is missing, but the secrets in {config.data_dir} are sealed already: "
                f"give the passphrase they were sealed with ({PASSPHRASE_ENV}, [vault] "
                "passphrase_file or passphrase_command)"
            )
        write_secret_file(key, secrets.token_urlsafe(32).encode() + b"\n", overwrite=False)
        log.warning("created a random vault key in %s (insecure_local_key)", key)
    if pending.exists():
        if key.exists():
            old = _read_local(key)
            try:
                sealer = Sealer.open(store, old.secret, where=where, log2_n=log2_n)
            except WrongPassphrase:
                pass
            else:
                pending.unlink()
                _sync_dir(pending.parent)
                log.warning("dropped %s: the rekey that wrote it did not happen", pending)
                return sealer, old
        new = _read_local(pending)
        sealer = Sealer.open(store, new.secret, where=where, log2_n=log2_n)
        os.replace(pending, key)
        _sync_dir(key.parent)
        log.warning("finished an interrupted rekey: %s is now the vault key", key)
        return sealer, Passphrase(new.secret, f"the local vault key {key}", local=True)
    passphrase = _read_local(key)
    return Sealer.open(store, passphrase.secret, where=where, log2_n=log2_n), passphrase


def write_secret_file(path: Path, data: bytes, *, overwrite: bool) -> None:
    """Write `data` to `path` (mode 0600) atomically and durably: a temporary file,
    fsynced, then linked (`overwrite` False: never replaces a file) or renamed into place,
    then the directory fsynced."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)  # left by a crashed earlier process with the same pid
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise VaultKeyError(f"{path} exists already") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    _sync_dir(path.parent)


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- changing the passphrase ------------------------------------------------------------------


def new_passphrase(
    config: NodeConfig,
    *,
    env: Mapping[str, str] | None = None,
    file: Path | None = None,
    command: str | None = None,
    local: bool = False,
    timeout: float | None = None,
) -> Passphrase | None:
    """The new passphrase of a rekey, from exactly one of `TSSNODE_NEW_PASSPHRASE`, a
    file, a command (one string, split like a shell), or None for a new random local key
    (`local`, insecure_local_key only). The same rules as the current one."""
    env = os.environ if env is None else env
    given = [
        name
        for name, present in (
            (NEW_PASSPHRASE_ENV, NEW_PASSPHRASE_ENV in env),
            ("--new-passphrase-file", file is not None),
            ("--new-passphrase-command", command is not None),
            ("--new-local-key", local),
        )
        if present
    ]
    if len(given) != 1:
        problem = "none given" if not given else f"{' and '.join(given)} given"
        raise VaultKeyError(
            f"give the new passphrase in one way ({problem}): {NEW_PASSPHRASE_ENV}, "
            "--new-passphrase-file PATH, --new-passphrase-command CMD, or --new-local-key "
            "(insecure_local_key only)"
        )
    insecure = config.vault.insecure_local_key
    if local:
        if not insecure:
            raise VaultKeyError(
                "--new-local-key keeps the key in the data directory: only with "
                f"[vault] insecure_local_key = true in {config.source}"
            )
        return None
    if file is not None:
        return from_file(
            file, config.data_dir, allow_inside=insecure, what="the new passphrase file"
        )
    if command is not None:
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            raise VaultKeyError(f"--new-passphrase-command: cannot split: {exc}") from None
        if not argv:
            raise VaultKeyError("--new-passphrase-command is empty")
        return from_command(
            argv,
            timeout=config.vault.command_timeout if timeout is None else timeout,
            what="the new passphrase command",
        )
    found = from_env(NEW_PASSPHRASE_ENV, env)
    assert found is not None
    return found


@dataclass(frozen=True)
class RekeyResult:
    """What `rekey` did: records re-sealed, old and new source, key files written/removed."""

    records: int
    old_source: str
    new_source: str
    written: Path | None = None
    removed: Path | None = None


def rekey(
    config: NodeConfig, new: Passphrase | None, env: Mapping[str, str] | None = None
) -> RekeyResult:
    """Seal every secret of the data directory again under `new` (None: a new random
    local key, insecure_local_key only), in one atomic batch. The current passphrase
    comes from where `tssnode run` takes it. `StoreLocked` while the node runs.

    A new local key is written to `vault.key.new` before the batch and renamed over
    `vault.key` after it (module docstring). Moving from the local key to another source
    removes `vault.key` once the batch is committed; a file named in passphrase_file is
    never touched (the operator replaces it)."""
    check_data_dir(config)
    if new is None and not config.vault.insecure_local_key:
        raise VaultKeyError("a new local key needs [vault] insecure_local_key = true")
    old = configured(config, env)
    if old is None and not config.vault.insecure_local_key:
        raise _no_passphrase(config)
    from_local_key = old is None
    key, pending = local_key_path(config.data_dir), pending_key_path(config.data_dir)
    where = str(config.data_dir)
    store = LevelStore(config.data_dir / "ledger.db")
    try:
        if old is None:
            _, old = _open_local(store, config, DEFAULT_LOG2_N)
        written = removed = None
        if new is None:
            new = Passphrase(secrets.token_urlsafe(32).encode(), f"the local vault key {key}", True)
            write_secret_file(pending, new.secret + b"\n", overwrite=True)
            written = key
        try:
            count = sealing_mod.rekey(store, old.secret, new.secret, where=where)
        except BaseException:
            if written is not None:  # not committed: the old key stays the key
                pending.unlink(missing_ok=True)
            raise
        if written is not None:
            os.replace(pending, key)
            _sync_dir(key.parent)
        elif from_local_key and key.exists():
            key.unlink()
            _sync_dir(key.parent)
            removed = key
    finally:
        store.close()
    return RekeyResult(count, old.source, new.source, written, removed)
