"""Proving the books: against themselves (database or beancount export) and against the chain."""

from .model import Violation, VerifyReport

__all__ = ["Violation", "VerifyReport"]
