"""The message hashing policy (PROTOCOL.md "Presignatures", CVE-2025-66017).

A signature made from a pooled presignature signs a digest that the signer computed
itself from the message and a named hash. A caller-supplied raw digest is only signed
with a presignature that was made for that digest (the digest is bound into the
presign session id), so nobody can choose a digest after seeing R (`sign.resolve_digest`
enforces it).

The hash names and the digest rules are defined once, in `tssnode.crypto.digests`, which
the node, the command line and the console share; this module re-exports them.
"""

from __future__ import annotations

from tssnode.crypto.digests import HASHES, HashPolicyError, message_digest

__all__ = ["HASHES", "HashPolicyError", "message_digest"]
