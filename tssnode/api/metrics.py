"""The Prometheus scrape endpoint: `GET /metrics` on its own listener (`[metrics] listen`),
serving what the node's `NodeMetrics` renders (docs/metrics.md)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def metrics_app(render: Callable[[], bytes]) -> Starlette:
    """An app answering `GET /metrics` with `render()` in Prometheus' text format."""

    async def metrics(request: Request) -> Response:
        return Response(render(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route("/metrics", metrics, methods=["GET"])])
