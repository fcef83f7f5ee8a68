"""Events out: every committed journal transaction published to a broker, and balance monitors.

The journal is the outbox. A publisher (``publisher``) reads it by sequence, after the writes have
committed and apart from them, publishes each transaction with its postings and the balances it
changed through an ``EventSink`` (``sinks``: NATS JetStream today), and stores how far it got in the
database. Balance monitors (``monitors``) fire when a transaction crosses their condition; their
webhook calls are queued in the database and delivered, signed and retried, by ``webhooks``.
"""
