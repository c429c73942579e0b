"""Session ids are part of the wire format: every party must compute the same bytes, and
they are signed into every message. These values were computed before the session-id
makers were gathered into `tssnode/protocol/ssid.py` (issue 15); they must never change
without a protocol version bump."""

from __future__ import annotations

import hashlib

from tssnode.crypto.group import base_mul
from tssnode.crypto.paillier import PaillierPublicKey
from tssnode.crypto.params import INSECURE_TEST, STANDARD
from tssnode.crypto.pedersen import PedersenParams
from tssnode.protocol import auxinfo, presign, sign
from tssnode.protocol.material import (
    AuxPublic,
    KeyPublic,
    KeyShare,
    Presignature,
    PresignTranscript,
)
from tssnode.protocol.ssid import aux_ssid, keygen_ssid, make_ssid, presign_ssid, sign_ssid

PARTIES = (1, 2, 3)


def _number(label: str, size: int = 192) -> int:
    return int.from_bytes(hashlib.shake_256(label.encode()).digest(size), "big") | 1


def _scalar(label: str) -> int:
    return int.from_bytes(hashlib.sha256(label.encode()).digest(), "big") % 2**255 + 1


def _key() -> KeyPublic:
    shares = {p: base_mul(_scalar(f"X{p}")) for p in PARTIES}
    return KeyPublic(
        INSECURE_TEST, 1, PARTIES, base_mul(_scalar("X")), shares, b"c" * 32, b"r" * 32, 0
    )


def _share() -> KeyShare:
    aux = AuxPublic(
        {p: PaillierPublicKey(_number(f"N{p}")) for p in PARTIES},
        {
            p: PedersenParams(_number(f"NH{p}"), _number(f"s{p}", 100), _number(f"t{p}", 100))
            for p in PARTIES
        },
    )
    return KeyShare(_key(), 1, _scalar("x1"), aux)


def _presignature(share: KeyShare) -> Presignature:
    key = share.key
    return Presignature(
        presign_ssid(share, (1, 2), 0, None, b"pin-presign"),
        key.key_id,
        1,
        (1, 2),
        base_mul(_scalar("R")),
        _scalar("k"),
        _scalar("chi"),
        0,
        None,
        key.public_key,
        PresignTranscript({}, {}, {}),
        base_mul(5),
    )


def test_keygen_session_ids_are_pinned():
    assert make_ssid("keygen", INSECURE_TEST, [3, 1, 2], 1, b"pin").hex() == (
        "659f41f333fc1fe1437aa09b268820dd9e5d977ae50608f2e724ad3d2767420a"
    )
    assert keygen_ssid(STANDARD, [1, 2, 3, 4], 2, b"pin").hex() == (
        "6729c2c6a879d1906322096165f6c004847cc090f8e1f141b8ed5bbc2552bd66"
    )


def test_refresh_and_reshare_session_ids_are_pinned():
    key = _key()
    assert aux_ssid(INSECURE_TEST, PARTIES, 1, b"pin-aux", key).hex() == (
        "c9c84908ca98f0667f54d1b5d146253eb8995ccffb2db8127cba54469d8a5285"
    )
    plan = auxinfo.Reshare(key, {1: 1, 2: 2, 4: 3})
    assert aux_ssid(INSECURE_TEST, (1, 2, 3, 4), 2, b"pin-reshare", plan).hex() == (
        "f40a1a43c5bd3f5cd1d66c912d72a64edaae8a971d32fed9f7745ac911963594"
    )


def test_presign_and_sign_session_ids_are_pinned():
    share = _share()
    assert presign_ssid(share, (1, 2), 0, None, b"pin-presign").hex() == (
        "85046d455f8a7b6bfafbda6ae042ea09262735c6bdb76cf97dcaaec47614b4b6"
    )
    assert presign_ssid(share, (1, 3), 7, bytes(range(32)), b"pin-presign").hex() == (
        "4ed3e7bf28363783b53f9c4b16bf24c8b259bf333516d9a7a342c924527a91eb"
    )
    digest = hashlib.sha256(b"message").digest()
    assert sign_ssid(_presignature(share), digest).hex() == (
        "7905e2ec4118bc4edf41ab123ba5a7f350c0d9de31467ca2cdb38b13e0228e0b"
    )


def test_the_phase_modules_use_the_same_functions():
    # no phase module keeps a session-id maker of its own
    for module in (auxinfo, presign, sign):
        assert not hasattr(module, "session_id")
    assert keygen_ssid(INSECURE_TEST, PARTIES, 1, b"n") == make_ssid(
        "keygen", INSECURE_TEST, PARTIES, 1, b"n"
    )
