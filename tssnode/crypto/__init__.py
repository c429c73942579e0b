"""Pure maths: the curve, Paillier, ring-Pedersen, safe primes, VSS, Fiat–Shamir, encodings.

Nothing here does I/O or imports an I/O framework (see ARCHITECTURE.md).
"""
