"""`tssnode simulate` as a user runs it: a real process, JSON checked by outside libraries."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from coincurve import PublicKey
from eth_keys import keys as eth_keys

from tssnode import launch
from tssnode.protocol.hashing import message_digest


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k != "TSSNODE_ALLOW_INSECURE"}
    done = launch.run(
        Path("tssnode simulate"),
        argv=launch.python_argv("tssnode.cli", "simulate", *args),
        env={**clean, **(env or {})},
        timeout=600,
    )
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
    )


def test_simulate_json_output_verifies():
    proc = _run(
        "--parties",
        "3",
        "--threshold",
        "1",
        "--tier",
        "insecure-test",
        "--allow-insecure",
        "--primes",
        "pool",
        "--message",
        "gm",
        "--hash",
        "keccak256",
        "--json",
        "--seed",
        "3",
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["parties"] == 3 and out["threshold"] == 1 and out["tier"] == "insecure-test"
    assert out["signers"] == [1, 2] and out["hash"] == "keccak256"
    digest = message_digest(b"gm", "keccak256")
    assert out["digest"] == digest.hex()
    assert set(out["timings_s"]) == {"keygen", "aux_info", "presign", "sign"}
    r, s, v = int(out["signature"]["r"], 16), int(out["signature"]["s"], 16), out["signature"]["v"]
    assert v in (27, 28)
    sig = eth_keys.Signature(vrs=(v - 27, r, s))
    recovered = sig.recover_public_key_from_msg_hash(digest)
    pub = PublicKey(bytes.fromhex(out["public_key"]))
    assert recovered.to_bytes() == pub.format(compressed=False)[1:]


def test_insecure_tier_needs_the_flag():
    proc = _run("--tier", "insecure-test", "--primes", "pool", "--json")
    assert proc.returncode == 1
    assert "insecure-test tier is for tests only" in proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize(
    "args", [["--parties", "2", "--threshold", "2"], ["--primes", "/nonexistent"]]
)
def test_bad_arguments_give_a_clear_error(args):
    proc = _run(*args, "--tier", "insecure-test", "--allow-insecure")
    assert proc.returncode == 1
    assert proc.stderr.startswith("tssnode simulate: ")
    assert "Traceback" not in proc.stderr


def test_human_output():
    proc = _run(
        "--parties",
        "2",
        "--threshold",
        "1",
        "--tier",
        "insecure-test",
        "--allow-insecure",
        "--primes",
        "pool",
    )
    assert proc.returncode == 0, proc.stderr
    assert "public key" in proc.stdout and "signature   r = " in proc.stdout
