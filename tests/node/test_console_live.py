"""The console (issue 7) against a real local network: four `tssnode run` processes, the
Textual app driven by its Pilot through the scenarios in tests/tui/live_scenarios.py."""

from __future__ import annotations

import pytest

from tests.tui.live_scenarios import keygen_becomes_active, peer_goes_red, sign_and_verify
from tssnode.testing.cluster import make_cluster, wait_for

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # Textual runs on asyncio


async def test_console_keygen_sign_and_a_node_going_red(tmp_path):
    nodes = make_cluster(tmp_path, 4)
    try:
        for node in nodes:
            node.start()
        for node in nodes:
            node.wait_api()
        with nodes[0].client() as api:
            wait_for(lambda: api.get("/status")["peers_connected"] == 3, "peers")
        url = nodes[0].api_url
        token = (nodes[0].data_dir / "api.token").read_text().strip()
        key = await keygen_becomes_active(url, token, threshold=2, within=240)
        sig = await sign_and_verify(url, token, key_id=key.key_id)
        assert sig.r and sig.s
        await peer_goes_red(url, token, peer_id=nodes[2].peer_id, kill=nodes[2].kill)
    finally:
        for node in nodes:
            node.stop()
