"""USDC amounts: integer micro-units inside, Decimal at the edges.

The grammar is strict on purpose: anything that is not plainly a positive
decimal with at most 6 places is rejected, never rounded, because a silently
truncated amount is a silently wrong ledger.
"""

from __future__ import annotations

import re
from decimal import Decimal

from .errors import InvalidAmount

CURRENCY = "USDC"
DECIMALS = 6
MICROS_PER_UNIT = 10**DECIMALS
# One amount is capped at 10^9 USDC so sums of many amounts stay far inside
# a signed 64-bit BIGINT (about 9.22 x 10^12 USDC).
MAX_AMOUNT_MICROS = 10**9 * MICROS_PER_UNIT

# Bounded digits: Python refuses int() of over 4300 digits, and no amount under
# the cap needs more than 10 (leading zeros are tolerated up to 20).
_AMOUNT_RE = re.compile(r"[0-9]{1,20}(?:\.[0-9]{1,6})?")
_QUANT = Decimal(1).scaleb(-DECIMALS)


def parse_amount(value: object, *, allow_zero: bool = False, field: str = "amount") -> int:
    """Parse a str/Decimal/int amount into micro-units, or raise InvalidAmount."""
    if isinstance(value, bool) or isinstance(value, float):
        raise InvalidAmount(f"{field} must be a decimal string, not {type(value).__name__}", field=field)
    if isinstance(value, int):
        micros = value * MICROS_PER_UNIT
    elif isinstance(value, Decimal):
        if not value.is_finite() or value.adjusted() > 12:  # bound before scaling: 1E+5000 is no amount
            raise InvalidAmount(f"{field} must be a finite amount under the cap", field=field)
        scaled = value.scaleb(DECIMALS)
        if scaled != scaled.to_integral_value():
            raise InvalidAmount(f"{field} has more than {DECIMALS} decimal places", field=field)
        micros = int(scaled)
    elif isinstance(value, str):
        if not _AMOUNT_RE.fullmatch(value):
            raise InvalidAmount(
                f"{field} must match [0-9]+(.[0-9]{{1,6}})?, got {value[:40]!r}", field=field
            )
        whole, _, frac = value.partition(".")
        micros = int(whole) * MICROS_PER_UNIT + int(frac.ljust(DECIMALS, "0") or "0")
    else:
        raise InvalidAmount(f"{field} must be a decimal string, not {type(value).__name__}", field=field)
    return check_micros(micros, allow_zero=allow_zero, field=field)


def check_micros(micros: int, *, allow_zero: bool = False, field: str = "amount") -> int:
    """Bound-check an amount already in micro-units."""
    if isinstance(micros, bool) or not isinstance(micros, int):
        raise InvalidAmount(f"{field} micro-units must be an int", field=field)
    if micros < 0 or (micros == 0 and not allow_zero):
        raise InvalidAmount(f"{field} must be greater than zero", field=field)
    if micros > MAX_AMOUNT_MICROS:
        raise InvalidAmount(f"{field} exceeds the cap of 1000000000 USDC", field=field)
    return micros


def to_decimal(micros: int) -> Decimal:
    """Micro-units as a Decimal quantized to exactly 6 places."""
    return (Decimal(micros) / MICROS_PER_UNIT).quantize(_QUANT)


def format_micros(micros: int) -> str:
    """Micro-units as the wire string with exactly 6 decimals ("-1.500000")."""
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), MICROS_PER_UNIT)
    return f"{sign}{whole}.{frac:06d}"
