"""Four `tssnode run` processes with JSON logs and Prometheus metrics: a keygen, pooled
presignatures, signatures and a refresh. Afterwards every log line is one JSON object,
the metrics (read with the client library's parser) tell what happened, and no secret
of any node (key share, Paillier factors, ring-Pedersen λ, presignature k and χ, the API
token, the vault passphrase) appears in any log, in any of the forms a formatter could
write it."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from ecdsa import SECP256k1, VerifyingKey
from prometheus_client.parser import text_string_to_metric_families

from tssnode.api.client import get_or_none
from tssnode.config import NodeConfig
from tssnode.node.vaultkey import unlock
from tssnode.protocol.hashing import message_digest
from tssnode.protocol.material import KeyShare, Presignature
from tssnode.testing.cluster import NodeProc, make_cluster, wait_for

PASSPHRASE_ENV = "TSSNODE_PASSPHRASE"


def _sign(api, key_id: str, message: str) -> dict:
    out = api.post("/sign", {"key_id": key_id, "message": message})
    return wait_for(
        lambda: (
            (s := get_or_none(api, f"/signatures/{out['signature_id']}"))
            and s["status"] == "done"
            and s
        ),
        f"the signature of {message!r}",
        180,
    )


def _scrape(node: NodeProc) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    assert node.metrics_url is not None
    text = httpx.get(node.metrics_url, timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _forms(value: int) -> list[str]:
    """How a formatter might write a secret integer: decimal, hex (either case, padded to
    32 bytes or not), base-10 of its 32-byte big-endian bytes' repr is covered by hex."""
    h = format(value, "x")
    return [str(value), h, h.upper(), format(value, "064x"), format(value, "064X")]


def _secrets_of(node: NodeProc) -> tuple[list[str], int, int]:
    """Every secret this node holds, in every form; and how many shares and presignatures
    it held."""
    config = NodeConfig.load(node.config)
    assert node.passphrase is not None
    opened = unlock(config, {PASSPHRASE_ENV: node.passphrase})
    values: list[int] = []
    shares = presignatures = 0
    try:
        vault = opened.vault
        for key_id in vault.share_keys():
            for epoch in vault.share_epochs(key_id):
                raw = vault.get_share(key_id, epoch)
                assert raw is not None
                share = KeyShare.from_bytes(raw)
                shares += 1
                values.append(int(share.x))
                if share.aux_secret is not None:
                    aux = share.aux_secret
                    values += [int(aux.p), int(aux.q), int(aux.lam)]
            for presig_id in vault.presignature_ids(key_id):
                raw = vault.get_presignature(key_id, presig_id)
                assert raw is not None
                pre = Presignature.from_bytes(raw)
                presignatures += 1
                values += [int(pre.k), int(pre.chi)]
    finally:
        opened.close()
    forms = [f for v in values if v.bit_length() > 64 for f in _forms(v)]
    token = (node.data_dir / "api.token").read_text().strip()
    return [*forms, token, node.passphrase], shares, presignatures


def _start(nodes: list[NodeProc]) -> None:
    for node in nodes:
        node.extra_env["TSSNODE_LOG_FORMAT"] = "json"
        node.start()
    for node in nodes:
        node.wait_api()


def _stop(nodes: list[NodeProc]) -> None:
    for node in nodes:
        node.stop()


def _sign_and_check(api, key: dict, message: str) -> None:
    sig = _sign(api, key["key_id"], message)
    digest = message_digest(message.encode(), "sha256")
    assert VerifyingKey.from_string(
        bytes.fromhex(key["public_key"]), curve=SECP256k1
    ).verify_digest(bytes.fromhex(sig["r"] + sig["s"]), digest)


def test_json_logs_metrics_and_no_secret_in_any_log(tmp_path: Path) -> None:
    nodes = make_cluster(tmp_path, 4, presign_pool=2, metrics=True)
    secrets: list[str] = []
    try:
        _start(nodes)
        n1, n2, n3, _n4 = (node.client() for node in nodes)
        req = n1.post("/keygen", {"threshold": 1, "parties": None})
        key = wait_for(
            lambda: (
                (k := get_or_none(n2, f"/keys/{req['key_id']}")) and k["status"] == "active" and k
            ),
            "the key",
            300,
        )
        wait_for(lambda: n2.get(f"/keys/{key['key_id']}")["presignatures"] >= 2, "a pool", 300)
        _sign_and_check(n2, key, "message 0")
        _sign_and_check(n3, key, "message 1")
        # the two signatures used pooled presignatures: let the pool refill before the
        # nodes stop, or there may be none on disk to look for (a race under load)
        wait_for(lambda: n2.get(f"/keys/{key['key_id']}")["presignatures"] >= 2, "a refill", 300)
        for api in (n1, n2, n3, _n4):
            api.http.close()
        # the epoch-0 secrets, read while the nodes are down (a running node holds its store)
        _stop(nodes)
        pooled = 0
        for node in nodes:
            found, shares, presignatures = _secrets_of(node)
            assert shares == 1
            secrets, pooled = secrets + found, pooled + presignatures
        assert pooled >= 2  # (each pooled presignature is held by its two signers)
        _start(nodes)
        n1, n2, n3, _n4 = (node.client() for node in nodes)
        n1.post(f"/keys/{key['key_id']}/refresh", {})
        wait_for(lambda: n1.get(f"/keys/{key['key_id']}")["epoch"] == 1, "the refresh", 300)
        wait_for(lambda: n2.get(f"/keys/{key['key_id']}")["presignatures"] >= 2, "a pool", 300)
        _sign_and_check(n3, key, "message 2")
        height = n1.get("/status")["height"]
        sessions: list[dict] = []
        for node in nodes:
            with node.client() as api:
                sessions += api.get("/sessions")
        finished = [s for s in sessions if s["status"] == "done"]
        assert finished and all(s["round"] == s["rounds"] for s in finished), [
            (s["phase"], s["round"], s["rounds"]) for s in finished
        ]  # a done session shows its last round (it showed round 1)
        assert all(s["finished"] >= s["started"] > 1.7e9 for s in finished)  # Unix times

        got = _scrape(nodes[0])  # (counted since the restart)
        assert got[("tssnode_height", ())] >= height
        assert got[("tssnode_blocks_committed_total", ())] >= 1
        assert got[("tssnode_commit_latency_seconds_count", ())] >= 1
        phases: set[str] = set()  # what sessions ended well, at any node
        for node in nodes:
            for (name, labels), v in _scrape(node).items():
                if name == "tssnode_sessions_total" and ("outcome", "done") in labels and v:
                    phases.add(dict(labels)["phase"])
        assert {"aux", "presign", "sign"} <= phases, phases  # the refresh is aux
        proofs = sum(
            v for (name, labels), v in got.items()
            if name == "tssnode_proof_verifications_total" and ("result", "ok") in labels
        )  # fmt: skip
        assert proofs > 0
        assert got[("tssnode_vault_operations_total", (("operation", "put_share"),))] >= 1
        assert ("tssnode_presignatures", (("key_id", key["key_id"]), ("state", "ready"))) in got
        for api in (n1, n2, n3, _n4):
            api.http.close()
    finally:
        _stop(nodes)
    for node in nodes:  # the epoch-1 secrets
        found, shares, _ = _secrets_of(node)
        assert shares == 1  # (the epoch-0 share is gone)
        secrets += found
    assert len(secrets) > 40
    for node in nodes:
        text = node.log.read_text()
        lines = [line for line in text.splitlines() if line.strip()]
        assert len(lines) > 20
        for line in lines:
            if line.startswith("tssnode: "):  # the start-up line on stdout
                continue
            record = json.loads(line)
            assert {"time", "level", "logger", "message"} <= record.keys()
        assert any(json.loads(line).get("ssid") for line in lines if line.startswith("{"))
        for secret in secrets:
            assert secret not in text, f"a secret of some node is in node {node.index}'s log"
