"""The mempool: Bitcoin Core's `AcceptToMemoryPool`, in its order of checks, with its
default policy (Core 28: full replace-by-fee, 1 sat/vB minimum relay fee).

    context-free    CheckTransaction, not a coinbase, IsStandardTx, size ≥ 65 bytes
    chain context   final at the next block, not already in the mempool, inputs exist
                    (UTXO set or mempool), BIP-68 locks, CheckTxInputs (coinbase maturity
                    100, inputs cover outputs), standard inputs and witnesses, ≤ 16 000
                    signature-operation cost
    fees            fee ≥ 1 sat/vB of the sigop-adjusted vsize ("min relay fee not met")
    chain limits    ≤ 25 ancestors / descendants, ≤ 101 kvB each way
    replacement     BIP-125 rules 2–6 as Core applies them, every transaction replaceable
    scripts         every input verified by libbitcoinkernel against the output it spends
                    (amount and scriptPubKey, segwit and taproot included), then the
                    policy-only flags (`policy.check_script_policy`)

A block that connects removes its transactions and their conflicts; a reorg (a kernel
reorg or an `invalidateblock`) puts the transactions of the disconnected blocks back
first, then re-admits the rest, dropping what is no longer valid, as Core's
`MaybeUpdateMempoolForReorg` does. The mempool never full: no eviction by fee, and Core's
"mempool min fee not met" cannot happen here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from tssnode.regtest import consensus, policy, scripts
from tssnode.regtest.blocks import MAX_BLOCK_SIGOPS_COST, MAX_BLOCK_WEIGHT
from tssnode.regtest.chain import Chain, Coin, Delta
from tssnode.regtest.errors import TxRejected
from tssnode.regtest.txs import OutPoint, Tx
from tssnode.regtest.units import fee_for, format_feerate, format_money

log = logging.getLogger("tssnode.regtest.mempool")

MIN_RELAY_FEE = 1000  # sat/kvB (-minrelaytxfee)
INCREMENTAL_RELAY_FEE = 1000  # sat/kvB (-incrementalrelayfee)
ANCESTOR_LIMIT = DESCENDANT_LIMIT = 25
ANCESTOR_SIZE_LIMIT = DESCENDANT_SIZE_LIMIT = 101_000  # vbytes
MAX_REPLACEMENT_CANDIDATES = 100


@dataclass
class Entry:
    """A transaction in the mempool; `vsize` is sigop-adjusted, as Core's entry size."""

    tx: Tx
    fee: int
    vsize: int
    sigop_cost: int
    time: int
    height: int

    @property
    def feerate(self) -> int:
        """`CFeeRate(fee, vsize)` in sat/kvB (truncated, as Core compares them)."""
        return self.fee * 1000 // self.vsize


@dataclass(frozen=True)
class Accepted:
    """What `accept` admitted (or, with test_only, would admit)."""

    tx: Tx
    fee: int
    vsize: int
    replaced: tuple[bytes, ...]


class Mempool:
    """Unconfirmed transactions over a `Chain`, ordered parents first."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.entries: dict[bytes, Entry] = {}
        self.spenders: dict[OutPoint, bytes] = {}
        self.by_wtxid: dict[bytes, bytes] = {}
        self.sequence = 0  # getrawmempool's mempool_sequence: one per addition or removal

    # -- graph ---------------------------------------------------------------------------------

    def parents(self, txid: bytes) -> set[bytes]:
        tx = self.entries[txid].tx
        return {txin.prevout[0] for txin in tx.vin if txin.prevout[0] in self.entries}

    def children(self, txid: bytes) -> set[bytes]:
        tx = self.entries[txid].tx
        found = (self.spenders.get((txid, n)) for n in range(len(tx.vout)))
        return {child for child in found if child is not None}

    def ancestors(self, txid: bytes) -> set[bytes]:
        return self._walk(self.parents(txid), self.parents)

    def descendants(self, txid: bytes) -> set[bytes]:
        return self._walk(self.children(txid), self.children)

    @staticmethod
    def _walk(start: Iterable[bytes], step: Callable[[bytes], set[bytes]]) -> set[bytes]:
        seen: set[bytes] = set()
        stack = list(start)
        while stack:
            txid = stack.pop()
            if txid not in seen:
                seen.add(txid)
                stack.extend(step(txid))
        return seen

    def replaceable(self, txid: bytes) -> bool:
        """BIP-125 signalling, explicit or inherited (getrawmempool's bip125-replaceable)."""
        return any(self.entries[t].tx.signals_rbf for t in {txid, *self.ancestors(txid)})

    def coin(self, op: OutPoint) -> Coin | None:
        """An output of the chain's UTXO set or of a mempool transaction (height: next)."""
        coin = self.chain.utxo.get(op)
        if coin is not None:
            return coin
        entry = self.entries.get(op[0])
        if entry is None or op[1] >= len(entry.tx.vout):
            return None
        out = entry.tx.vout[op[1]]
        if scripts.is_unspendable(out.script):
            return None
        return Coin(out.value, out.script, self.chain.height + 1, False)

    # -- acceptance ----------------------------------------------------------------------------

    def accept(self, tx: Tx, *, bypass_limits: bool = False, test_only: bool = False) -> Accepted:
        """Admit `tx` or raise TxRejected with Core's reason; `test_only` changes nothing."""
        consensus.check_transaction(tx)
        if tx.is_coinbase:
            raise TxRejected("coinbase")
        policy.check_standard(tx)
        chain = self.chain
        next_height = chain.height + 1
        tip_mtp = chain.median_time_past(chain.tip.hash)
        if not consensus.is_final(tx, next_height, tip_mtp):
            raise TxRejected("non-final")
        if tx.wtxid in self.by_wtxid:
            raise TxRejected("txn-already-in-mempool")
        if tx.txid in self.entries:
            raise TxRejected("txn-same-nonwitness-data-in-mempool")
        conflicts = {
            self.spenders[txin.prevout] for txin in tx.vin if txin.prevout in self.spenders
        }
        coins: list[Coin] = []
        for txin in tx.vin:
            coin = self.coin(txin.prevout)
            if coin is None:
                if any((tx.txid, n) in chain.utxo for n in range(len(tx.vout))):
                    raise TxRejected("txn-already-known")
                raise TxRejected("bad-txns-inputs-missingorspent", missing_inputs=True)
            coins.append(coin)
        heights = [coin.height for coin in coins]
        if not consensus.sequence_locks_ok(tx, heights, next_height, self._mtp_at):
            raise TxRejected("non-BIP68-final")
        fee = consensus.check_tx_inputs(tx, coins, next_height)
        policy.check_inputs_standard(tx, coins)
        policy.check_witness_standard(tx, coins)
        sigops = consensus.sigop_cost(tx, coins)
        if sigops > policy.MAX_STANDARD_TX_SIGOPS_COST:
            raise TxRejected("bad-txns-too-many-sigops", str(sigops))
        vsize = tx.sigop_vsize(sigops)
        if not bypass_limits and fee < fee_for(MIN_RELAY_FEE, vsize):
            raise TxRejected("min relay fee not met", f"{fee} < {fee_for(MIN_RELAY_FEE, vsize)}")
        ancestors = self._check_limits(tx, vsize, conflicts)
        all_conflicts = self._check_replacement(tx, fee, vsize, conflicts, ancestors)
        self._check_scripts(tx, coins)
        replaced = tuple(all_conflicts)
        if not test_only:
            for txid in all_conflicts:
                if txid in self.entries:
                    self._remove(txid)
            self._add(Entry(tx, fee, vsize, sigops, int(time.time()), chain.height))
            if replaced:
                log.info("%s replaced %d transaction(s)", tx.txid[::-1].hex(), len(replaced))
        return Accepted(tx, fee, vsize, replaced)

    def _mtp_at(self, height: int) -> int:
        return self.chain.median_time_past(self.chain.active[height])

    def _check_limits(self, tx: Tx, vsize: int, conflicts: set[bytes]) -> set[bytes]:
        """Core's ancestor and descendant limits (count and virtual size)."""
        parents = {txin.prevout[0] for txin in tx.vin if txin.prevout[0] in self.entries}
        ancestors = self._walk(parents, self.parents)
        if len(ancestors) + 1 > ANCESTOR_LIMIT:
            raise TxRejected(
                "too-long-mempool-chain",
                f"too many unconfirmed ancestors [limit: {ANCESTOR_LIMIT}]",
            )
        size = vsize + sum(self.entries[a].vsize for a in ancestors)
        if size > ANCESTOR_SIZE_LIMIT:
            raise TxRejected(
                "too-long-mempool-chain",
                f"exceeds ancestor size limit [limit: {ANCESTOR_SIZE_LIMIT}]",
            )
        for ancestor in ancestors:
            family = {ancestor, *self.descendants(ancestor)} - conflicts
            if len(family) + 1 > DESCENDANT_LIMIT:
                raise TxRejected(
                    "too-long-mempool-chain",
                    f"too many descendants for tx {ancestor[::-1].hex()} "
                    f"[limit: {DESCENDANT_LIMIT}]",
                )
            if sum(self.entries[t].vsize for t in family) + vsize > DESCENDANT_SIZE_LIMIT:
                raise TxRejected(
                    "too-long-mempool-chain",
                    f"exceeds descendant size limit for tx {ancestor[::-1].hex()} "
                    f"[limit: {DESCENDANT_SIZE_LIMIT}]",
                )
        return ancestors

    def _check_replacement(
        self, tx: Tx, fee: int, vsize: int, conflicts: set[bytes], ancestors: set[bytes]
    ) -> list[bytes]:
        """BIP-125 as Core 28 applies it under full RBF; the transactions to evict."""
        if not conflicts:
            return []
        txid = tx.txid[::-1].hex()
        new_rate = fee * 1000 // vsize
        for conflict in sorted(conflicts):
            old_rate = self.entries[conflict].feerate
            if new_rate <= old_rate:  # rule 6
                raise TxRejected(
                    "insufficient fee",
                    f"rejecting replacement {txid}; new feerate {format_feerate(new_rate)} "
                    f"<= old feerate {format_feerate(old_rate)}",
                )
        evicted: list[bytes] = []
        for conflict in conflicts:
            for t in (conflict, *self.descendants(conflict)):
                if t not in evicted:
                    evicted.append(t)
        if len(evicted) > MAX_REPLACEMENT_CANDIDATES:  # rule 5
            raise TxRejected(
                "too many potential replacements",
                f"rejecting replacement {txid}; too many potential replacements "
                f"({len(evicted)} > {MAX_REPLACEMENT_CANDIDATES})",
            )
        parents_of_conflicts = {
            txin.prevout[0] for c in conflicts for txin in self.entries[c].tx.vin
        }
        for index, txin in enumerate(tx.vin):  # rule 2
            if txin.prevout[0] not in parents_of_conflicts and txin.prevout[0] in self.entries:
                raise TxRejected(
                    "replacement-adds-unconfirmed",
                    f"replacement {txid} adds unconfirmed input, idx {index}",
                )
        for ancestor in ancestors:
            if ancestor in evicted:
                raise TxRejected(
                    "bad-txns-spends-conflicting-tx",
                    f"{txid} spends conflicting transaction {ancestor[::-1].hex()}",
                )
        old_fees = sum(self.entries[t].fee for t in evicted)
        if fee < old_fees:  # rule 3
            raise TxRejected(
                "insufficient fee",
                f"rejecting replacement {txid}, less fees than conflicting txs; "
                f"{format_money(fee)} < {format_money(old_fees)}",
            )
        relay = fee_for(INCREMENTAL_RELAY_FEE, vsize)
        if fee - old_fees < relay:  # rule 4
            raise TxRejected(
                "insufficient fee",
                f"rejecting replacement {txid}, not enough additional fees to relay; "
                f"{format_money(fee - old_fees)} < {format_money(relay)}",
            )
        return evicted

    def _check_scripts(self, tx: Tx, coins: list[Coin]) -> None:
        """Consensus by the kernel first, then the policy-only flags; Core's message tells
        which of the two failed."""
        spent = [(coin.value, coin.script) for coin in coins]
        bad = self.chain.kernel.verify_inputs(tx.raw, spent)
        if bad is not None:
            why = consensus.describe_script_failure(coins[bad].script, tx.vin[bad])
            raise TxRejected(f"mandatory-script-verify-flag-failed ({why})")
        policy.check_script_policy(tx, coins)

    # -- bookkeeping ---------------------------------------------------------------------------

    def _add(self, entry: Entry) -> None:
        tx = entry.tx
        self.entries[tx.txid] = entry
        self.by_wtxid[tx.wtxid] = tx.txid
        self.sequence += 1
        for txin in tx.vin:
            self.spenders[txin.prevout] = tx.txid

    def _remove(self, txid: bytes) -> None:
        entry = self.entries.pop(txid)
        self.by_wtxid.pop(entry.tx.wtxid, None)
        self.sequence += 1
        for txin in entry.tx.vin:
            if self.spenders.get(txin.prevout) == txid:
                del self.spenders[txin.prevout]

    def remove_recursive(self, txid: bytes) -> list[bytes]:
        """Remove a transaction and everything that spends it."""
        doomed = [txid, *self.descendants(txid)]
        for t in doomed:
            self._remove(t)
        return doomed

    def update(self, delta: Delta) -> None:
        """Follow a change of the active chain (see the module docstring)."""
        if not delta:
            return
        if not delta.disconnected:
            for _, block in delta.connected:
                for obj in block.vtx[1:]:
                    tx = Tx.from_obj(obj)
                    if tx.txid in self.entries:
                        self._remove(tx.txid)
                    for txin in tx.vin:
                        other = self.spenders.get(txin.prevout)
                        if other is not None and other != tx.txid:
                            self.remove_recursive(other)
            return
        again = [Tx.from_obj(o) for _, b in reversed(delta.disconnected) for o in b.vtx[1:]]
        kept = list(self.entries.values())
        times = {e.tx.txid: e.time for e in kept}
        self.entries.clear()
        self.spenders.clear()
        self.by_wtxid.clear()
        for tx in [*again, *(e.tx for e in kept)]:
            if tx.txid in self.chain.txindex or tx.txid in self.entries:
                continue
            try:
                self.accept(tx, bypass_limits=True)
            except TxRejected as exc:
                log.info("after the reorg, %s left the mempool: %s", tx.txid[::-1].hex(), exc)
                continue
            if tx.txid in times:
                self.entries[tx.txid].time = times[tx.txid]

    # -- block template --------------------------------------------------------------------------

    def select(self) -> tuple[list[Tx], int]:
        """Transactions for the next block, best ancestor fee rate first, parents before
        children, within the block's weight and sigop budgets; and their total fee."""
        order = list(self.entries)
        position = {txid: i for i, txid in enumerate(order)}

        def score(txid: bytes) -> tuple[float, int]:
            package = {txid, *self.ancestors(txid)}
            fees = sum(self.entries[t].fee for t in package)
            size = sum(self.entries[t].vsize for t in package)
            return (-fees / size, position[txid])

        chosen: list[bytes] = []
        taken: set[bytes] = set()
        weight, sigops = 4000, 400  # reserved for the coinbase, as Core's assembler
        for txid in sorted(order, key=score):
            package = sorted({txid, *self.ancestors(txid)} - taken, key=position.__getitem__)
            add_weight = sum(self.entries[t].tx.weight for t in package)
            add_sigops = sum(self.entries[t].sigop_cost for t in package)
            if (
                weight + add_weight > MAX_BLOCK_WEIGHT
                or sigops + add_sigops > MAX_BLOCK_SIGOPS_COST
            ):
                continue
            weight += add_weight
            sigops += add_sigops
            chosen.extend(package)
            taken.update(package)
        return [self.entries[t].tx for t in chosen], sum(self.entries[t].fee for t in chosen)
