"""agentbooks: a double-entry accounting core for AI agents holding USDC.

``Ledger.open(url)`` is the entry point; see ``agentbooks.ledger``.
"""

from .domain.errors import *  # noqa: F401,F403 - every typed error is public
from .domain import errors
from .domain.errors import LedgerError
from .domain.model import Balance, Entry, HoldState, Kind, Posting, Transaction
from .ledger import Ledger

__all__ = ["Ledger", "LedgerError", "errors", "Balance", "Entry", "HoldState", "Kind", "Posting", "Transaction"]
__version__ = "0.1.0"
