"""Bitcoin Core's script interpreter, through py-bitcoinkernel (`pbk`, alpha): the one check
of an input script that the bridge's releases and the regtest chain's mempool share.

With `tssnode.regtest.kernel` (the regtest chainstate, whose `verify_inputs` delegates
here), the only module that imports `pbk`. What it relies on, checked with pbk 0.1.0a5:

- Verification takes consensus flags only (`ScriptVerificationFlags.ALL`: P2SH, DERSIG,
  NULLDUMMY, CHECKLOCKTIMEVERIFY, CHECKSEQUENCEVERIFY, WITNESS, TAPROOT); the C API
  asserts, and so aborts the whole process, on any policy bit such as LOW_S. Standardness
  (low s, compressed keys) is the caller's to check.
- The TAPROOT flag needs the spent outputs of every input, so they are always given.
- The verdict is valid or invalid, nothing more: `ScriptPubkey.verify` returns False with
  no script error code for a failing script, and raises `ScriptVerifyException` only for
  a misuse (a bad flags combination, spent outputs missing). The input index must be in
  range (the C API does not say what it does otherwise): it is checked here first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# pbk 0.1.0a5 ships no py.typed marker: its objects are Any here, typed values leave this module
import pbk  # type: ignore[import-untyped]
from pbk.script import PrecomputedTransactionData  # type: ignore[import-untyped]

from tssnode.errors import TssError

#: what a failing script gets from the kernel: a verdict, no ScriptError (see above)
REJECTED = "rejected by Bitcoin Core's script interpreter (libbitcoinkernel, all consensus flags)"


class KernelInputError(TssError):
    """Bytes the kernel cannot parse as a transaction, or spent outputs that do not match
    its inputs one for one."""


@dataclass(frozen=True)
class ScriptFailure:
    """The first input whose script the kernel rejected, and what it said."""

    index: int
    reason: str


def first_script_failure(tx_raw: bytes, spent: Sequence[tuple[int, bytes]]) -> ScriptFailure | None:
    """Check every input's script against the output it spends, (amount, scriptPubKey) in
    input order, with all consensus flags; the first input the kernel rejects, or None if
    it accepts them all."""
    try:
        tx = pbk.Transaction(bytes(tx_raw))
    except RuntimeError:
        raise KernelInputError("the kernel cannot parse the transaction") from None
    n_inputs = len(tx.inputs)
    if n_inputs != len(spent):
        raise KernelInputError(f"{len(spent)} spent outputs for {n_inputs} inputs")
    outputs = [pbk.TransactionOutput(pbk.ScriptPubkey(spk), amount) for amount, spk in spent]
    precomputed = PrecomputedTransactionData(tx, outputs)
    flags = pbk.ScriptVerificationFlags.ALL
    for index, (amount, spk) in enumerate(spent):
        try:
            ok = pbk.ScriptPubkey(spk).verify(amount, tx, precomputed, index, flags)
        except pbk.ScriptVerifyException as exc:
            return ScriptFailure(index, f"the kernel refused to verify: {exc.status.name}")
        if not ok:
            return ScriptFailure(index, REJECTED)
    return None
