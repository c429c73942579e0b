"""Amounts and fee rates as Bitcoin Core's RPC writes and reads them.

Satoshis inside, BTC at the RPC boundary as exact decimals with 8 places (`50.00000000`,
never a binary float); fee rates are satoshis per 1000 virtual bytes inside and BTC/kvB
outside, and `fee_for` rounds up as `CFeeRate::GetFee` does.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from tssnode.regtest.errors import RPC_TYPE_ERROR, RPCError

COIN = 100_000_000
MAX_MONEY = 21_000_000 * COIN
_EIGHT = Decimal("0.00000001")


def btc(sats: int) -> Decimal:
    """Satoshis as BTC with exactly 8 decimal places."""
    return (Decimal(sats) / COIN).quantize(_EIGHT)


def feerate_btc_kvb(sat_per_kvb: int | Decimal) -> Decimal:
    """A fee rate in satoshis per kvB as BTC/kvB (8 places, as Core prints it)."""
    return (Decimal(sat_per_kvb) / COIN).quantize(_EIGHT)


def fee_for(sat_per_kvb: int, vsize: int) -> int:
    """The fee of `vsize` vbytes at this rate, rounded up (`CFeeRate::GetFee`)."""
    if vsize == 0:
        return 0
    fee = -((-sat_per_kvb * vsize) // 1000)
    return fee if fee != 0 or sat_per_kvb <= 0 else 1


def format_feerate(sat_per_kvb: int) -> str:
    """`CFeeRate::ToString()`: "0.00001000 BTC/kvB"."""
    return f"{feerate_btc_kvb(sat_per_kvb)} BTC/kvB"


def format_money(sats: int) -> str:
    """`FormatMoney`: BTC with trailing zeros trimmed to at least two places."""
    text = f"{btc(sats)}"
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0")
    return f"{whole}.{frac.ljust(2, '0')}"


def amount_from_value(value: object, *, allow_zero: bool = True) -> int:
    """Core's `AmountFromValue`: a JSON number or string of BTC with at most 8 decimals,
    as satoshis; -3 "Invalid amount" / "Amount out of range" otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, float, str)):
        raise RPCError(RPC_TYPE_ERROR, "Amount is not a number or string")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise RPCError(RPC_TYPE_ERROR, "Invalid amount") from None
    if not amount.is_finite():
        raise RPCError(RPC_TYPE_ERROR, "Invalid amount")
    sats = amount * COIN
    if sats != sats.to_integral_value():
        raise RPCError(RPC_TYPE_ERROR, "Invalid amount")
    result = int(sats)
    if result < 0 or result > MAX_MONEY or (result == 0 and not allow_zero):
        raise RPCError(RPC_TYPE_ERROR, "Amount out of range")
    return result


def feerate_from_value(value: object) -> int:
    """A BTC/kvB fee rate argument (e.g. `maxfeerate`) as satoshis per kvB."""
    return amount_from_value(value)
