"""Pure ledger domain: money, accounts, postings, operations and their rules.

Nothing here touches a database, a web framework or beancount, so every rule
can be tested as plain data in, plain data out.
"""
