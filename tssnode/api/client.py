"""Clients of the control API: `ApiClient` (blocking, for the CLI) and `AsyncApiClient`
(for the console, which runs on asyncio). Both raise `ApiError` with the server's own
message for any 4xx/5xx, and `ApiUnavailable` when the node cannot be reached."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx


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
        while True:
            try:
                resp = self.http.request(method, path, json=body, params=params or None)
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


class AsyncApiClient:
    def __init__(self, base_url: str, token: str, timeout: float = 30.0) -> None:
        self.http = httpx.AsyncClient(
            base_url=base_url, headers={"authorization": f"Bearer {token}"}, timeout=timeout
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

    async def events(self, since: int | None = None) -> AsyncIterator[dict[str, Any]]:
        """The node's event stream, decoded (server-sent events)."""
        params = {"since": since} if since is not None else None
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


def get_or_none(api: ApiClient, path: str) -> Any:
    """The resource at `path`, or None while the node does not know it (404)."""
    try:
        return api.get(path)
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise
