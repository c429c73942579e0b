"""The net layer's multi-node fixtures (`net_cluster`, `process_nodes`), for the tests of
`tssnode.testing.netcluster` itself."""

from __future__ import annotations

from tests.net.conftest import net_cluster as net_cluster
from tests.net.conftest import process_nodes as process_nodes
