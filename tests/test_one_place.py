"""Issue 15, "the same knowledge is written in one place": where a list must be spelt out
again because the layering keeps a module from importing the one that owns it, these hold
the copy to its owner, so that the two cannot drift apart unnoticed.

- the hash names of `POST /sign` (tssnode.schema, a leaf below crypto) are
  tssnode.crypto.digests' `HASHES`;
- the parameter tiers the CLI and the benchmark offer are tssnode.crypto.params' `TIERS`;
- the key purposes (the registry's `KEY_PURPOSES`, the API's `KeygenBody.purpose`, the
  node's `APP_RESULTS`) are the applications the node runs that ask the registry for
  signatures (`tssnode.cli.daemon.APPS`): a purpose is the name of such an application
  (`AppSignRequest.app`), and the registry may not import them (they are its siblings).
"""

from __future__ import annotations

import os
from typing import Any, get_args

import pytest

from tssnode.bench import cluster as bench_cluster
from tssnode.bridge.app import BRIDGE_PURPOSE, BridgeApp
from tssnode.cli.cluster import parser_cluster
from tssnode.cli.daemon import APPS
from tssnode.crypto.digests import HASHES
from tssnode.crypto.params import INSECURE_ENV, INSECURE_TEST, TIERS
from tssnode.node.executor import APP_RESULTS
from tssnode.registry.app import KeyRegistry
from tssnode.registry.transactions import KEY_PURPOSES
from tssnode.schema import KeygenBody, SignBody

#: applications the node runs that never ask the registry for a signature, so have no key
#: purpose (the registry itself is one); a new application that does ask for signatures
#: needs a purpose in KEY_PURPOSES, in KeygenBody.purpose and in APP_RESULTS
NO_KEY_PURPOSE = {KeyRegistry.name}


def literal_values(model: Any, field: str) -> set[Any]:
    return set(get_args(model.model_fields[field].annotation))


def test_the_api_offers_the_hashes_a_sign_request_may_name():
    assert literal_values(SignBody, "hash") == set(HASHES)
    assert SignBody.model_fields["hash"].default in HASHES


def test_the_cli_offers_every_tier_and_no_other():
    for name in TIERS:
        assert parser_cluster().parse_args(["demo", "--tier", name]).tier == name
    with pytest.raises(SystemExit):
        parser_cluster().parse_args(["demo", "--tier", "no-such-tier"])


def test_the_benchmark_offers_every_tier_and_no_other(monkeypatch, capsys):
    measured: list[str] = []

    def measure(tier: str, pool: int, signs: int) -> dict[str, Any]:
        measured.append(tier)
        return {"keygen": 1.0, "refresh": 1.0, "signs": [0.1] * signs}

    monkeypatch.setattr(bench_cluster, "_measure", measure)
    for name in TIERS:
        monkeypatch.delenv(INSECURE_ENV, raising=False)
        assert bench_cluster.main(["--tier", name, "--signs", "1"]) == 0
        assert measured[-2:] == [name, name]
        # the insecure tier's nodes are allowed to load it, no other's
        assert (INSECURE_ENV in os.environ) == (name == INSECURE_TEST.name)
    with pytest.raises(SystemExit):
        bench_cluster.main(["--tier", "no-such-tier"])
    capsys.readouterr()


def test_key_purposes_are_the_applications_that_ask_for_signatures():
    names = [app.name for app in APPS]
    assert len(set(names)) == len(names)
    signing = set(names) - NO_KEY_PURPOSE
    assert set(KEY_PURPOSES) == {""} | signing, "registry.transactions.KEY_PURPOSES"
    assert literal_values(KeygenBody, "purpose") == set(KEY_PURPOSES), "schema.KeygenBody"
    assert set(APP_RESULTS) == signing, "node.executor.APP_RESULTS"
    assert BridgeApp.name == BRIDGE_PURPOSE
