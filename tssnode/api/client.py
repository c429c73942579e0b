"""Clients of the control API: `ApiClient` (blocking, for the CLI) and `AsyncApiClient`
(for the console, which runs on asyncio). Both raise `ApiError` with the server's own
message for any 4xx/5xx, and `ApiUnavailable` when the node cannot be reached.

`get` and `post` answer with the decoded JSON. The typed calls (`status()`, `keys()`,
`sign(...)`, … one per route, the same in both clients) build their request bodies with
the schema's request models and answer with its response models (`tssnode.schema`): a
body the node would refuse raises `pydantic.ValidationError` before it is sent, and so
does an answer that lacks a field the schema requires; fields the schema does not know
are kept (`model_extra`)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from tssnode import schema

T = TypeVar("T")
R = TypeVar("R", bound=schema.Response)


class ApiError(Exception):
    """The node answered with an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status, self.message = status, message


class ApiUnavailable(Exception):
    """The node could not be reached."""


def read_token(path: str | Path) -> str:
    return Path(path).read_text().strip()


def _unwrap(resp: httpx.Response) -> Any:
    if resp.status_code >= 400:
        try:
            message = resp.json().get("error", resp.text)
        except ValueError:
            message = resp.text
        raise ApiError(resp.status_code, str(message))
    return resp.json()


@dataclass(frozen=True)
class Call(Generic[T]):
    """One typed call: the request, and how its answer is read."""

    method: str
    path: str
    read: Callable[[Any], T]
    body: Any = None
    params: dict[str, Any] = field(default_factory=dict)


def _one(model: type[R]) -> Callable[[Any], R]:
    return model.model_validate


def _many(model: type[R]) -> Callable[[Any], list[R]]:
    return TypeAdapter(list[model]).validate_python  # type: ignore[valid-type]


def _body(model: type[BaseModel], **fields: Any) -> Any:
    """A request body, checked by its schema model (defaults left to the node)."""
    return model(**fields).model_dump(mode="json", exclude_defaults=True)


class Calls:
    """The typed calls, one per route (both clients send them)."""

    @staticmethod
    def status() -> Call[schema.Status]:
        return Call("GET", "/status", _one(schema.Status))

    @staticmethod
    def validators() -> Call[list[schema.Validator]]:
        return Call("GET", "/validators", _many(schema.Validator))

    @staticmethod
    def peers() -> Call[list[schema.Peer]]:
        return Call("GET", "/peers", _many(schema.Peer))

    @staticmethod
    def keys() -> Call[list[schema.Key]]:
        return Call("GET", "/keys", _many(schema.Key))

    @staticmethod
    def key(key_id: str) -> Call[schema.Key]:
        return Call("GET", f"/keys/{key_id}", _one(schema.Key))

    @staticmethod
    def keygen(
        threshold: int, parties: list[str] | None = None, *, single_signer: bool = False
    ) -> Call[schema.KeyAccepted]:
        body = _body(
            schema.KeygenBody, threshold=threshold, parties=parties, single_signer=single_signer
        )
        return Call("POST", "/keygen", _one(schema.KeyAccepted), body)

    @staticmethod
    def refresh(
        key_id: str,
        parties: list[str] | None = None,
        threshold: int | None = None,
        *,
        single_signer: bool = False,
    ) -> Call[schema.KeyAccepted]:
        body = _body(
            schema.RefreshBody, parties=parties, threshold=threshold, single_signer=single_signer
        )
        return Call("POST", f"/keys/{key_id}/refresh", _one(schema.KeyAccepted), body)

    @staticmethod
    def derive(key_id: str, path: str) -> Call[schema.Derived]:
        body = _body(schema.DeriveBody, path=path)
        return Call("POST", f"/keys/{key_id}/derive", _one(schema.Derived), body)

    @staticmethod
    def presign(key_id: str, count: int = 1) -> Call[schema.KeyAccepted]:
        body = _body(schema.PresignBody, count=count)
        return Call("POST", f"/keys/{key_id}/presign", _one(schema.KeyAccepted), body)

    @staticmethod
    def sign(
        key_id: str, message: str | bytes, hash: str = "sha256", path: str | None = None
    ) -> Call[schema.SignAccepted]:
        """`message` as text (`str`) or as bytes (sent as `message_hex`)."""
        text = {"message": message} if isinstance(message, str) else {"message_hex": message.hex()}
        body = _body(schema.SignBody, key_id=key_id, hash=hash, path=path, **text)
        return Call("POST", "/sign", _one(schema.SignAccepted), body)

    @staticmethod
    def signature(signature_id: str) -> Call[schema.Signature]:
        return Call("GET", f"/signatures/{signature_id}", _one(schema.Signature))

    @staticmethod
    def sessions() -> Call[list[schema.Session]]:
        return Call("GET", "/sessions", _many(schema.Session))

    @staticmethod
    def session(session_id: str) -> Call[schema.Session]:
        return Call("GET", f"/sessions/{session_id}", _one(schema.Session))

    @staticmethod
    def blocks(start: int = 0, limit: int = 20) -> Call[list[schema.Block]]:
        params = {"from": start, "limit": limit}
        return Call("GET", "/blocks", _many(schema.Block), params=params)

    @staticmethod
    def block(height: int) -> Call[schema.Block]:
        return Call("GET", f"/blocks/{height}", _one(schema.Block))

    @staticmethod
    def transaction(tx_hash: str) -> Call[schema.Transaction]:
        return Call("GET", f"/tx/{tx_hash}", _one(schema.Transaction))

    @staticmethod
    def join_request() -> Call[schema.JoinRequest]:
        return Call("GET", "/join-request", _one(schema.JoinRequest))

    @staticmethod
    def vote_join(request_hex: str) -> Call[schema.JoinVoteAccepted]:
        body = _body(schema.JoinVoteBody, request=request_hex)
        return Call("POST", "/validators/join", _one(schema.JoinVoteAccepted), body)


def _retry_after(resp: httpx.Response) -> float:
    try:
        return min(30.0, max(0.1, float(resp.headers.get("retry-after", "1"))))
    except ValueError:
        return 1.0


class ApiClient:
    """Blocking client. A `429` (the node's API is throttling, `Limits`) is refused
    before the node does any work, so it is waited out (`Retry-After`) and sent again,
    for up to `patience` seconds; after that it is an `ApiError` like any other."""

    def __init__(
        self,
        base_url: str,
        token: str,
        timeout: float = 30.0,
        patience: float = 60.0,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.http = httpx.Client(
            base_url=base_url,
            headers={"authorization": f"Bearer {token}"},
            timeout=timeout,
            transport=transport,
        )
        self.patience = patience
        #: 429s waited out so far (a load test reads it)
        self.throttled = 0

    @property
    def base_url(self) -> str:
        """The API's address, as given (without a trailing slash)."""
        return str(self.http.base_url).rstrip("/")

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def _send(self, method: str, path: str, body: Any, params: dict[str, Any]) -> Any:
        deadline = time.monotonic() + self.patience
        reused = method == "GET"  # may a closed keep-alive connection be tried again?
        while True:
            try:
                resp = self.http.request(method, path, json=body, params=params or None)
            except httpx.RemoteProtocolError as exc:
                # The server closed a kept-alive connection as this request went out on it
                # (hypercorn does after 1000 requests on one): a read is asked once more,
                # on a new connection. A write is not: it may have been acted on.
                if not reused:
                    raise ApiUnavailable(f"cannot reach {self.http.base_url}: {exc}") from None
                reused = False
                continue
            except httpx.TransportError as exc:
                raise ApiUnavailable(f"cannot reach {self.http.base_url}: {exc}") from None
            if resp.status_code != 429 or time.monotonic() >= deadline:
                return _unwrap(resp)
            self.throttled += 1
            time.sleep(min(_retry_after(resp), max(0.0, deadline - time.monotonic())))

    def get(self, path: str, **params: Any) -> Any:
        return self._send("GET", path, None, params)

    def post(self, path: str, body: Any = None, **params: Any) -> Any:
        return self._send("POST", path, body, params)

    # -- typed calls (`Calls`) ------------------------------------------------------------------
    def call(self, call: Call[T]) -> T:
        return call.read(self._send(call.method, call.path, call.body, call.params))

    def health(self) -> schema.Health:
        """`GET /health`: healthy or not (a 503 is an answer here, not an error)."""
        return _health(self._raw_get("/health"))

    def _raw_get(self, path: str) -> httpx.Response:
        try:
            return self.http.get(path)
        except httpx.TransportError as exc:
            raise ApiUnavailable(f"cannot reach {self.http.base_url}: {exc}") from None

    def status(self) -> schema.Status:
        return self.call(Calls.status())

    def validators(self) -> list[schema.Validator]:
        return self.call(Calls.validators())

    def peers(self) -> list[schema.Peer]:
        return self.call(Calls.peers())

    def keys(self) -> list[schema.Key]:
        return self.call(Calls.keys())

    def key(self, key_id: str) -> schema.Key:
        return self.call(Calls.key(key_id))

    def keygen(
        self, threshold: int, parties: list[str] | None = None, *, single_signer: bool = False
    ) -> schema.KeyAccepted:
        return self.call(Calls.keygen(threshold, parties, single_signer=single_signer))

    def refresh(
        self,
        key_id: str,
        parties: list[str] | None = None,
        threshold: int | None = None,
        *,
        single_signer: bool = False,
    ) -> schema.KeyAccepted:
        return self.call(Calls.refresh(key_id, parties, threshold, single_signer=single_signer))

    def derive(self, key_id: str, path: str) -> schema.Derived:
        return self.call(Calls.derive(key_id, path))

    def presign(self, key_id: str, count: int = 1) -> schema.KeyAccepted:
        return self.call(Calls.presign(key_id, count))

    def sign(
        self, key_id: str, message: str | bytes, hash: str = "sha256", path: str | None = None
    ) -> schema.SignAccepted:
        return self.call(Calls.sign(key_id, message, hash, path))

    def signature(self, signature_id: str) -> schema.Signature:
        return self.call(Calls.signature(signature_id))

    def sessions(self) -> list[schema.Session]:
        return self.call(Calls.sessions())

    def session(self, session_id: str) -> schema.Session:
        return self.call(Calls.session(session_id))

    def blocks(self, start: int = 0, limit: int = 20) -> list[schema.Block]:
        return self.call(Calls.blocks(start, limit))

    def block(self, height: int) -> schema.Block:
        return self.call(Calls.block(height))

    def transaction(self, tx_hash: str) -> schema.Transaction:
        return self.call(Calls.transaction(tx_hash))

    def join_request(self) -> schema.JoinRequest:
        return self.call(Calls.join_request())

    def vote_join(self, request_hex: str) -> schema.JoinVoteAccepted:
        return self.call(Calls.vote_join(request_hex))


def _health(resp: httpx.Response) -> schema.Health:
    if resp.status_code not in (200, 503):
        _unwrap(resp)  # raises ApiError
    return schema.Health.model_validate(resp.json())


class AsyncApiClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        timeout: float = 30.0,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url,
            headers={"authorization": f"Bearer {token}"},
            timeout=timeout,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def get(self, path: str, **params: Any) -> Any:
        try:
            return _unwrap(await self.http.get(path, params=params or None))
        except httpx.TransportError as exc:
            raise ApiUnavailable(f"cannot reach {self.http.base_url}: {exc}") from None

    async def post(self, path: str, body: Any = None, **params: Any) -> Any:
        try:
            return _unwrap(await self.http.post(path, json=body, params=params or None))
        except httpx.TransportError as exc:
            raise ApiUnavailable(f"cannot reach {self.http.base_url}: {exc}") from None

    async def _send(self, method: str, path: str, body: Any, params: dict[str, Any]) -> Any:
        try:
            resp = await self.http.request(method, path, json=body, params=params or None)
        except httpx.TransportError as exc:
            raise ApiUnavailable(f"cannot reach {self.http.base_url}: {exc}") from None
        return _unwrap(resp)

    # -- typed calls (`Calls`) ------------------------------------------------------------------
    async def call(self, call: Call[T]) -> T:
        return call.read(await self._send(call.method, call.path, call.body, call.params))

    async def health(self) -> schema.Health:
        """`GET /health`: healthy or not (a 503 is an answer here, not an error)."""
        try:
            return _health(await self.http.get("/health"))
        except httpx.TransportError as exc:
            raise ApiUnavailable(f"cannot reach {self.http.base_url}: {exc}") from None

    async def status(self) -> schema.Status:
        return await self.call(Calls.status())

    async def validators(self) -> list[schema.Validator]:
        return await self.call(Calls.validators())

    async def peers(self) -> list[schema.Peer]:
        return await self.call(Calls.peers())

    async def keys(self) -> list[schema.Key]:
        return await self.call(Calls.keys())

    async def key(self, key_id: str) -> schema.Key:
        return await self.call(Calls.key(key_id))

    async def keygen(
        self, threshold: int, parties: list[str] | None = None, *, single_signer: bool = False
    ) -> schema.KeyAccepted:
        return await self.call(Calls.keygen(threshold, parties, single_signer=single_signer))

    async def refresh(
        self,
        key_id: str,
        parties: list[str] | None = None,
        threshold: int | None = None,
        *,
        single_signer: bool = False,
    ) -> schema.KeyAccepted:
        call = Calls.refresh(key_id, parties, threshold, single_signer=single_signer)
        return await self.call(call)

    async def derive(self, key_id: str, path: str) -> schema.Derived:
        return await self.call(Calls.derive(key_id, path))

    async def presign(self, key_id: str, count: int = 1) -> schema.KeyAccepted:
        return await self.call(Calls.presign(key_id, count))

    async def sign(
        self, key_id: str, message: str | bytes, hash: str = "sha256", path: str | None = None
    ) -> schema.SignAccepted:
        return await self.call(Calls.sign(key_id, message, hash, path))

    async def signature(self, signature_id: str) -> schema.Signature:
        return await self.call(Calls.signature(signature_id))

    async def sessions(self) -> list[schema.Session]:
        return await self.call(Calls.sessions())

    async def session(self, session_id: str) -> schema.Session:
        return await self.call(Calls.session(session_id))

    async def blocks(self, start: int = 0, limit: int = 20) -> list[schema.Block]:
        return await self.call(Calls.blocks(start, limit))

    async def block(self, height: int) -> schema.Block:
        return await self.call(Calls.block(height))

    async def transaction(self, tx_hash: str) -> schema.Transaction:
        return await self.call(Calls.transaction(tx_hash))

    async def join_request(self) -> schema.JoinRequest:
        return await self.call(Calls.join_request())

    async def vote_join(self, request_hex: str) -> schema.JoinVoteAccepted:
        return await self.call(Calls.vote_join(request_hex))

    async def event_models(self, since: int | None = None) -> AsyncIterator[schema.Event]:
        """`events`, each read with its schema model (`schema.Event`); an event that does
        not fit one (a kind this client does not know yet) is skipped."""
        async for data in self.events(since):
            try:
                yield schema.parse_event(data)
            except ValidationError:
                continue

    async def events(
        self, since: int | None = None, kinds: Sequence[str] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """The node's event stream, decoded (server-sent events), only `kinds` if given."""
        params = _event_params(since, kinds)
        try:
            async with self.http.stream("GET", "/events", params=params, timeout=None) as resp:
                if resp.status_code >= 400:
                    await resp.aread()
                    _unwrap(resp)
                async for line in resp.aiter_lines():
                    if line.startswith("data: "):
                        yield json.loads(line[6:])
        except httpx.TransportError as exc:
            raise ApiUnavailable(f"event stream from {self.http.base_url} lost: {exc}") from None


def _event_params(since: int | None, kinds: Sequence[str] | None) -> dict[str, Any] | None:
    params: dict[str, Any] = {}
    if since is not None:
        params["since"] = since
    if kinds is not None:
        params["kind"] = ",".join(kinds)
    return params or None


def get_or_none(api: ApiClient, path: str) -> Any:
    """The resource at `path`, or None while the node does not know it (404)."""
    try:
        return api.get(path)
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise
