"""Exports of the books for accountants' tools (beancount, and through it fava and bean-query)."""
