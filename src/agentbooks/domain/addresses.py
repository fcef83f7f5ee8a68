"""Agent identifiers: EVM addresses, normalised to lower case at the boundary."""

from __future__ import annotations

import re

from .errors import InvalidAddress, InvalidReference

_ADDRESS_RE = re.compile(r"0x[0-9a-fA-F]{40}")
# References become beancount metadata and API path segments: keep them
# printable, bounded and free of quotes and whitespace.
_REFERENCE_RE = re.compile(r"[A-Za-z0-9_.:/@#+=\-]{1,128}")


def normalize_address(value: object, *, field: str = "agent") -> str:
    if not isinstance(value, str) or not _ADDRESS_RE.fullmatch(value):
        shown = value[:50] if isinstance(value, str) else type(value).__name__
        raise InvalidAddress(f"{field} must be 0x followed by 40 hex digits, got {shown!r}", field=field)
    return value.lower()


def check_reference(value: object, *, field: str = "reference") -> str:
    if not isinstance(value, str) or not _REFERENCE_RE.fullmatch(value):
        shown = value[:50] if isinstance(value, str) else type(value).__name__
        raise InvalidReference(
            f"{field} must be 1-128 characters of [A-Za-z0-9_.:/@#+=-], got {shown!r}", field=field
        )
    return value
