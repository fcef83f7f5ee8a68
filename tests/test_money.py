"""The amount grammar and address rules: strict, never rounded, never a float."""

from __future__ import annotations

from decimal import Decimal

import pytest

from agentbooks.domain.addresses import normalize_address
from agentbooks.domain.errors import InvalidAddress, InvalidAmount
from agentbooks.domain.money import MAX_AMOUNT_MICROS, format_micros, parse_amount, to_decimal


@pytest.mark.parametrize("text, micros", [
    ("10", 10_000_000),
    ("10.5", 10_500_000),
    ("0.000001", 1),
    ("1000000000", MAX_AMOUNT_MICROS),
    ("007.10", 7_100_000),
])
def test_valid_amounts_parse_to_exact_micro_units(text, micros):
    assert parse_amount(text) == micros
    assert parse_amount(Decimal(text)) == micros


@pytest.mark.parametrize("bad", [
    "", " 1", "1 ", "-1", "+1", "1e3", "1.0000001", "NaN", "Infinity", "1.", ".5", "1,5", "0", "0.000000",
    "1000000000.000001", "١٢",  # non-ASCII digits
    Decimal("NaN"), Decimal("1.0000001"), Decimal("-1"), 1.5, True, None, b"1",
])
def test_invalid_amounts_are_refused_not_rounded(bad):
    with pytest.raises(InvalidAmount) as raised:
        parse_amount(bad)
    assert raised.value.code == "invalid_amount"


def test_float_is_a_type_error_too():
    with pytest.raises(TypeError):
        parse_amount(0.1)


def test_zero_allowed_only_where_asked():
    assert parse_amount("0", allow_zero=True) == 0


@pytest.mark.parametrize("micros, text", [(0, "0.000000"), (1, "0.000001"), (-1_500_000, "-1.500000"), (10**15, "1000000000.000000")])
def test_wire_format_always_has_six_decimals(micros, text):
    assert format_micros(micros) == text
    assert str(to_decimal(micros)) == text


def test_addresses_are_normalised_to_lower_case():
    assert normalize_address("0x5AEDA56215b167893e80B4fE645BA6d5Bab767DE") == "0x5aeda56215b167893e80b4fe645ba6d5bab767de"


@pytest.mark.parametrize("bad", ["", "0x123", "5aeda56215b167893e80b4fe645ba6d5bab767de", "0x" + "g" * 40, None, 7])
def test_bad_addresses_are_refused(bad):
    with pytest.raises(InvalidAddress):
        normalize_address(bad)
