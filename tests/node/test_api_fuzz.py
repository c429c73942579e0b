"""Fuzz the control API of a real `tssnode run` process (issue 13): requests generated
with hypothesis from the node's own OpenAPI document (every route and method, its path
and query parameters, and JSON bodies built from each body schema's property names with
values of every JSON type, including lone surrogates, huge and non-ASCII numbers, deep
nesting and raw garbage). No request may get a 5xx; every 4xx carries a JSON reason; the
node logs no internal error and still answers afterwards.

A few hundred requests in `make test`, a few thousand in the slow tier."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tssnode.api.openapi import openapi_document
from tssnode.testing.cluster import running_cluster

ROUTES = [
    (method.upper(), path, op)
    for path, ops in openapi_document()["paths"].items()
    for method, op in ops.items()
]

WEIRD = st.sampled_from(
    [
        "", "..", "%2e%2e%2f", "\u0663", "\u00b2", "-1", "0x" + "ab" * 32, "ab" * 16, "ab" * 32,
        "9" * 40, "\ud800", "\udfff", "\x00", "m/1", "m" + "/1" * 120, "null", "[]", " ",
    ]
)  # fmt: skip
TEXT = st.one_of(WEIRD, st.text(max_size=60), st.from_regex(r"[0-9a-fA-F]{1,70}", fullmatch=True))
NUMBER = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, 2, 64, 65, 255, 256, 2**31, 2**63, 2**64]),
    st.floats(allow_nan=False),
)
SCALAR = st.one_of(st.none(), st.booleans(), NUMBER, TEXT)
JSON = st.recursive(
    SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


def _body_for(op: dict[str, Any]) -> st.SearchStrategy[bytes | None]:
    schema = op.get("requestBody", {}).get("content", {}).get("application/json", {})
    names = list(schema.get("schema", {}).get("properties", {}))
    shaped = st.fixed_dictionaries({}, optional={name: JSON for name in [*names, "extra"]}).map(
        lambda d: json.dumps(d).encode()
    )
    raw = st.one_of(
        st.binary(max_size=200),
        st.sampled_from([b"[" * 50_000, b"{" * 50_000, b'{"a": ' * 5000, b"null", b"\xff"]),
        JSON.map(lambda v: json.dumps(v).encode()),
    )
    return st.one_of(st.none(), shaped, shaped, raw)


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, dict[str, str], bytes | None]:
    method, path, op = draw(st.sampled_from(ROUTES))
    params: dict[str, str] = {}
    for p in op.get("parameters", []):
        value = draw(TEXT)
        if p["in"] == "path":
            raw = draw(st.booleans())
            path = path.replace("{" + p["name"] + "}", value if raw else _q(value, ""))
        elif draw(st.booleans()):
            params[p["name"]] = value
    return method, path, params, draw(_body_for(op))


def _q(value: str, safe: str) -> str:
    """Percent-encoded, as a client may send any bytes (a lone surrogate included)."""
    return quote(value, safe=safe, errors="surrogatepass")


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    with running_cluster(tmp_path_factory.mktemp("fuzz"), 1) as nodes:
        yield nodes[0]


def _fuzz(node, request) -> None:
    method, path, params, body = request
    token = (node.data_dir / "api.token").read_text().strip()
    if not path.isascii() or any(ord(c) <= 32 for c in path):
        path = _q(path, "/%")  # (a raw one is not sendable as an HTTP request line)
    if params:
        path += "?" + "&".join(f"{_q(k, '')}={_q(v, '')}" for k, v in params.items())
    auth = {"authorization": f"Bearer {token}"}
    with (
        httpx.Client(base_url=node.api_url, headers=auth, timeout=20) as c,
        c.stream(method, path, content=body) as r,
    ):
        status = r.status_code
        if not path.startswith("/events") or status >= 400:  # (the stream never ends)
            r.read()
    assert status < 500, (method, path, params, body and body[:80], status, r.text[:300])
    if status >= 400:
        assert r.json()["error"], (method, path, r.text[:200])


FAST = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)


@FAST
@given(request=requests())
def test_no_request_gets_a_5xx(node, request) -> None:
    _fuzz(node, request)


@pytest.mark.slow
@settings(FAST, max_examples=3000, derandomize=False)
@given(request=requests())
def test_no_request_gets_a_5xx_over_thousands(node, request) -> None:
    _fuzz(node, request)


def test_the_node_is_unharmed_after_the_fuzzing(node) -> None:
    """(runs after the fuzz tests above, on the same node)"""
    token = (node.data_dir / "api.token").read_text().strip()
    with httpx.Client(base_url=node.api_url, headers={"authorization": f"Bearer {token}"}) as c:
        assert c.get("/status").status_code == 200
    assert node.proc is not None and node.proc.poll() is None
    log = node.log.read_text()
    assert "internal error" not in log and "failed\nTraceback" not in log
