"""Feldman VSS over secp256k1 and Lagrange interpolation at zero.

A dealer's polynomial f(X) = a_0 + a_1·X + … + a_t·X^t over Z_q is published as the point
commitments F = (a_0·G, …, a_t·G). A share f(j) verifies when f(j)·G = Σ_k j^k·F_k.
Checks from PROTOCOL.md ("VSS"): degree exactly t (the top commitment is not the
identity), constant term non-zero at keygen and zero at refresh, party indices non-zero
and unique, zero shares refused.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from tssnode.crypto.arith import sample_scalar
from tssnode.crypto.group import Point, Q, base_mul, inv_mod_q
from tssnode.errors import InvalidShare


@dataclass(frozen=True, repr=False)
class Polynomial:
    """Secret coefficients a_0 … a_t (never printed)."""

    coefficients: tuple[int, ...]

    def __repr__(self) -> str:
        return f"Polynomial(degree={self.degree}, secret hidden)"

    @property
    def degree(self) -> int:
        return len(self.coefficients) - 1

    @staticmethod
    def random(degree: int, constant: int | None, rng: random.Random | None = None) -> Polynomial:
        """A uniformly random polynomial of exactly `degree` with the given constant term
        (a random non-zero one when `constant` is None)."""
        if degree < 0:
            raise ValueError("degree must be non-negative")
        a0 = sample_scalar(rng) if constant is None else constant % Q
        coeffs = [a0] + [sample_scalar(rng) for _ in range(degree)]  # sample_scalar is non-zero
        return Polynomial(tuple(coeffs))

    def __call__(self, x: int) -> int:
        acc = 0
        for a in reversed(self.coefficients):
            acc = (acc * x + a) % Q
        return acc

    def commitments(self) -> tuple[Point, ...]:
        return tuple(base_mul(a) for a in self.coefficients)


def eval_commitments(commitments: Sequence[Point], x: int) -> Point:
    """Σ_k x^k·F_k = f(x)·G, by Horner's rule on points."""
    acc = Point.identity()
    for c in reversed(commitments):
        acc = acc * x + c
    return acc


def check_commitments(commitments: Sequence[Point], threshold: int, *, refresh: bool) -> None:
    """Degree exactly `threshold`; F_0 ≠ 0 at keygen and F_0 = 0 at refresh."""
    if len(commitments) != threshold + 1:
        raise InvalidShare(
            f"VSS commitment has degree {len(commitments) - 1}, expected {threshold}"
        )
    if threshold > 0 and commitments[-1].is_identity:
        raise InvalidShare("VSS polynomial degree is below the threshold (top coefficient zero)")
    if refresh and not commitments[0].is_identity:
        raise InvalidShare("refresh polynomial has a non-zero constant term")
    if not refresh and commitments[0].is_identity:
        raise InvalidShare("keygen polynomial has a zero constant term")


def verify_share(commitments: Sequence[Point], x: int, share: int) -> None:
    """share·G = F(x), with x a valid party index and the share non-zero."""
    if not 0 < x < Q:
        raise InvalidShare("party index out of range")
    if not 0 < share < Q:
        raise InvalidShare("share is zero or out of range")
    if base_mul(share) != eval_commitments(commitments, x):
        raise InvalidShare("share does not match the dealer's commitments")


def check_indices(indices: Sequence[int]) -> None:
    if any(not 0 < i < Q for i in indices):
        raise InvalidShare("party indices must be non-zero scalars")
    if len(set(indices)) != len(indices):
        raise InvalidShare("party indices repeat")


def lagrange_at_zero(i: int, indices: Sequence[int]) -> int:
    """λ_i = Π_{j∈S, j≠i} j / (j − i) mod q: the weight of party i's share in f(0)."""
    check_indices(indices)
    if i not in indices:
        raise InvalidShare("party is not in the signer set")
    num, den = 1, 1
    for j in indices:
        if j != i:
            num = num * j % Q
            den = den * (j - i) % Q
    return num * inv_mod_q(den) % Q


def interpolate_at_zero(points: dict[int, int]) -> int:
    """f(0) from t+1 evaluations {x: f(x)} (used by tests and by refresh checks)."""
    xs = list(points)
    return sum(lagrange_at_zero(x, xs) * y for x, y in points.items()) % Q
