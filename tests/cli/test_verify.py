"""`tssnode verify`: offline checks of signatures made by outside libraries (coincurve,
python-ecdsa) in every input form, and refusals of tampered ones (issue 14)."""

from __future__ import annotations

import hashlib
import json

import ecdsa
import pytest
from coincurve import PrivateKey
from ecdsa.util import sigencode_der, sigencode_strings

from tssnode import cli
from tssnode.crypto.digests import keccak256
from tssnode.crypto.group import Q

MESSAGE = b"transfer 1 BTC to Alice"


def verify(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["verify", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def signed() -> dict[str, str]:
    """A signature by coincurve (libsecp256k1) over sha256(MESSAGE)."""
    key = PrivateKey(hashlib.sha256(b"tssnode verify test key").digest())
    digest = hashlib.sha256(MESSAGE).digest()
    raw = key.sign_recoverable(digest, hasher=None)
    return {
        "compressed": key.public_key.format(compressed=True).hex(),
        "uncompressed": key.public_key.format(compressed=False).hex(),
        "r": raw[:32].hex(),
        "s": raw[32:64].hex(),
        "v": str(27 + raw[64]),
        "der": key.sign(digest, hasher=None).hex(),
        "digest": digest.hex(),
    }


def test_a_coincurve_signature_in_every_form(signed, capsys):
    r, s, v = signed["r"], signed["s"], signed["v"]
    forms = [
        ["--signature", f"{r},{s}"],
        ["--signature", f"0x{r}, 0x{s}, {v}"],
        ["--signature", r + s],
        ["--signature", r + s + f"{int(v):02x}"],
        ["--signature", signed["der"]],
        ["--r", r, "--s", s],
        ["--r", r, "--s", s, "--v", v],
    ]
    for key in (signed["compressed"], signed["uncompressed"], signed["uncompressed"][2:]):
        for form in forms:
            code, out, err = verify(
                capsys, "--public-key", key, "--message", MESSAGE.decode(), *form
            )
            assert code == 0, (form, out, err)
            assert out.startswith("valid: the signature verifies"), out
    code, out, _ = verify(
        capsys,
        "--public-key",
        signed["compressed"],
        "--digest",
        signed["digest"],
        "--r",
        r,
        "--s",
        s,
    )
    assert code == 0
    code, out, _ = verify(
        capsys,
        "--public-key",
        signed["compressed"],
        "--message-hex",
        MESSAGE.hex(),
        "--signature",
        f"{r},{s}",
    )
    assert code == 0


def test_a_python_ecdsa_signature(capsys):
    """python-ecdsa signs without normalising s: a high s verifies, with a note."""
    sk = ecdsa.SigningKey.from_string(
        hashlib.sha256(b"another key").digest(), curve=ecdsa.SECP256k1
    )
    public = sk.get_verifying_key().to_string("compressed").hex()
    digest = keccak256(MESSAGE)
    highs = lows = 0
    for i in range(8):
        msg = MESSAGE + bytes([i])
        digest = keccak256(msg)
        der = sk.sign_digest_deterministic(digest, sigencode=sigencode_der).hex()
        r_b, s_b = sk.sign_digest_deterministic(digest, sigencode=sigencode_strings)
        high = int.from_bytes(s_b, "big") > Q // 2
        for signature in (der, f"{r_b.hex()},{s_b.hex()}"):
            code, out, err = verify(
                capsys,
                "--public-key",
                public,
                "--message-hex",
                msg.hex(),
                "--hash",
                "keccak256",
                "--signature",
                signature,
            )
            assert code == 0, (out, err)
            assert ("note: s is high" in out) == high
        highs, lows = highs + high, lows + (not high)
    assert highs and lows  # both kinds were checked (the keys and messages are fixed)


def test_tampered_signatures_are_invalid(signed, capsys):
    r, s, v = signed["r"], signed["s"], signed["v"]
    pub = signed["compressed"]
    other = PrivateKey(hashlib.sha256(b"someone else").digest()).public_key.format().hex()
    flipped_s = f"{int(s, 16) ^ 1:064x}"
    flipped_r = f"{int(r, 16) ^ (1 << 200):064x}"
    cases = [
        [pub, "--message", MESSAGE.decode(), "--signature", f"{r},{flipped_s}"],
        [pub, "--message", MESSAGE.decode(), "--signature", f"{flipped_r},{s}"],
        [pub, "--message", MESSAGE.decode() + ".", "--signature", f"{r},{s}"],
        [pub, "--message", MESSAGE.decode(), "--hash", "keccak256", "--signature", f"{r},{s}"],
        [other, "--message", MESSAGE.decode(), "--signature", f"{r},{s}"],
        [pub, "--message", MESSAGE.decode(), "--signature", f"{r},0"],
        [pub, "--message", MESSAGE.decode(), "--signature", f"{r},{Q:064x}"],
    ]
    for case in cases:
        code, out, err = verify(capsys, "--public-key", *case)
        assert code == 1, (case, out, err)
        assert out.startswith("INVALID: "), out
        assert err == ""
    wrong_v = str(55 - int(v))  # 27 ↔ 28
    code, out, _ = verify(
        capsys,
        "--public-key",
        pub,
        "--message",
        MESSAGE.decode(),
        "--signature",
        f"{r},{s},{wrong_v}",
    )
    assert code == 1 and f"v = {wrong_v} recovers another public key" in out


def test_high_s_with_its_own_recovery_id(signed, capsys):
    r, s, v = signed["r"], int(signed["s"], 16), int(signed["v"])
    high = f"{Q - s:064x}"
    code, out, _ = verify(
        capsys,
        "--public-key",
        signed["compressed"],
        "--digest",
        signed["digest"],
        "--signature",
        f"{r},{high},{55 - v}",  # negating s flips the recovery id
    )
    assert code == 0, out
    assert "note: s is high" in out and f"v = {55 - v} recovers this public key" in out


def test_json_verdict_and_the_output_of_tssnode_sign(signed, capsys, tmp_path):
    sign_output = tmp_path / "sig.json"
    sign_output.write_text(
        json.dumps({"status": "done", "r": signed["r"], "s": signed["s"], "v": int(signed["v"])})
    )
    code, out, _ = verify(
        capsys,
        "--public-key",
        signed["compressed"],
        "--message",
        MESSAGE.decode(),
        "--signature-json",
        str(sign_output),
        "--json",
    )
    assert code == 0
    verdict = json.loads(out)
    assert verdict["valid"] is True and verdict["low_s"] is True and verdict["reason"] is None
    assert verdict["digest"] == signed["digest"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--public-key", "02" + "00" * 32], "not a point of secp256k1"),
        (["--public-key", "zz"], "the public key is not hexadecimal"),
        (["--public-key", "02ab"], "the public key has 2 bytes, not 33 or 64 or 65"),
    ],
)
def test_unusable_input_is_exit_2_and_one_line(signed, capsys, args, message):
    code, out, err = verify(
        capsys, *args, "--message", "x", "--signature", f"{signed['r']},{signed['s']}"
    )
    assert code == 2 and out == ""
    assert err.startswith("tssnode verify: ") and message in err and "Traceback" not in err
    code, out, err = verify(
        capsys, "--public-key", signed["compressed"], "--digest", "abcd", "--r", "01", "--s", "01"
    )
    assert code == 2 and "the digest has 2 bytes, not 32" in err
    code, out, err = verify(
        capsys, "--public-key", signed["compressed"], "--message", "x", "--signature", "30ff"
    )
    assert code == 2 and "not valid DER" in err
