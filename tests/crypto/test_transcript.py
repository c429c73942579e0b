from __future__ import annotations

import gmpy2

from tssnode.crypto.group import Q
from tssnode.crypto.transcript import Transcript


def t(*items, domain="d", ssid=b"s", prover=1):
    tr = Transcript(domain, ssid, prover)
    for label, value in items:
        tr.append(label, value)
    return tr


def test_items_are_unambiguous():
    # Concatenation-style ambiguities ("ab"+"c" vs "a"+"bc") give different challenges.
    assert (
        t(("x", b"ab"), ("x", b"c")).challenge_scalar()
        != t(("x", b"a"), ("x", b"bc")).challenge_scalar()
    )
    assert t(("x", [1, 2])).challenge_scalar() != t(("x", 1), ("x", 2)).challenge_scalar()
    assert t(("x", 1)).challenge_scalar() != t(("x", b"\x01")).challenge_scalar()
    assert t(("x", 1)).challenge_scalar() != t(("y", 1)).challenge_scalar()


def test_bound_to_domain_session_and_prover():
    base = t(("x", 1)).challenge_scalar()
    assert base == t(("x", 1)).challenge_scalar()
    assert base != t(("x", 1), domain="e").challenge_scalar()
    assert base != t(("x", 1), ssid=b"t").challenge_scalar()
    assert base != t(("x", 1), prover=2).challenge_scalar()


def test_challenge_ranges():
    for i in range(200):
        tr = t(("i", i))
        assert 0 <= tr.challenge_scalar() < Q
        e = tr.challenge_pm_q()
        assert -Q < e < Q
    signs = {t(("i", i)).challenge_pm_q() < 0 for i in range(64)}
    assert signs == {True, False}


def test_challenge_pm_bits_is_in_range_with_both_signs_and_its_extremes():
    """e ∈ (−2^c, 2^c): with c = 2 every one of −3..3 turns up, and nothing else; at c = 112
    both signs occur and |e| < 2^112."""
    seen = {int(t(("c2", i)).challenge_pm_bits(2)) for i in range(400)}
    assert seen == set(range(-3, 4))
    big = [t(("c112", i)).challenge_pm_bits(112) for i in range(64)]
    assert all(-(1 << 112) < e < (1 << 112) for e in big)
    assert {e < 0 for e in big} == {True, False}
    assert max(abs(e) for e in big).bit_length() > 100  # the whole range is used


def test_challenge_does_not_absorb():
    tr = t(("x", 1))
    a = tr.challenge_scalar()
    assert tr.challenge_scalar() == a


def test_bits_and_units_are_independent_per_index():
    tr = t(("x", 1))
    bits80 = tr.challenge_bits(80)
    assert tr.challenge_bits(10) == bits80[:10]
    assert set(bits80) == {0, 1}
    n = gmpy2.next_prime(2**200) * gmpy2.next_prime(2**210)
    ys = tr.challenge_units(n, 12)
    assert tr.challenge_units(n, 5) == ys[:5]
    assert len(set(ys)) == 12
    assert all(0 < y < n and gmpy2.gcd(y, n) == 1 for y in ys)


def test_units_skip_non_units():
    # n = 3·5·…: many draws are non-units, every result must still be a unit.
    n = 3 * 5 * 7 * 11 * 13
    ys = t(("x", 2)).challenge_units(n, 50)
    assert all(gmpy2.gcd(y, n) == 1 for y in ys)
