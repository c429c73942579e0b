"""What the facade's two sides (`NodeViews`, `NodeRequests`) use of the node's core,
declared once for the type checker; `NodeCore` provides all of it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from tssnode import schema
from tssnode.crypto.encoding import Wire
from tssnode.crypto.identity import IdentityKey
from tssnode.ledger.service import ReplicaService
from tssnode.ledger.state import LedgerState
from tssnode.node.accepted import AcceptedRequests
from tssnode.node.events import EventBus
from tssnode.node.executor import Executor
from tssnode.node.liveness import Liveness
from tssnode.node.sessions import Session
from tssnode.registry.app import KeyRegistry
from tssnode.registry.transactions import (
    AppSignRequest,
    KeygenRequest,
    RefreshRequest,
    SignRequest,
)
from tssnode.store.vault import Vault

#: the requests a node follows after accepting them (retries; their views before a block)
Request = KeygenRequest | RefreshRequest | SignRequest | AppSignRequest
REQUESTS = (KeygenRequest, RefreshRequest, SignRequest, AppSignRequest)


class CoreParts:
    """The attributes and methods of `NodeCore` its facade mixins rely on."""

    identity: IdentityKey
    service: ReplicaService
    events: EventBus
    peer_name: str
    offline: Callable[[], set[bytes]]
    retried: dict[bytes, bytes]
    btc_network: str
    default_tier: str
    started: float
    sessions: dict[bytes, Session]
    nursery: trio.Nursery | None
    submitted: dict[bytes, Request]
    accepted: AcceptedRequests
    executor: Executor
    vault: Vault

    if TYPE_CHECKING:

        @property
        def replica(self) -> Any: ...

        @property
        def state(self) -> LedgerState: ...

        @property
        def registry(self) -> KeyRegistry: ...

        def liveness(self) -> Liveness: ...

        def accept(self, payload: Wire, *, retry_of: bytes | None = None) -> bytes: ...

        def _submit(self, payload: Wire) -> bytes: ...

        def _follow(self, h: bytes, payload: Any) -> None: ...

        def _latest_try(
            self, raw: bytes
        ) -> tuple[bytes, list[tuple[str, schema.RequestStatus, schema.Blame | None]]]: ...
