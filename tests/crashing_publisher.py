"""A publisher for the crash test: it dies (``os._exit``) once the broker has confirmed ``crash_after``
messages, in the middle of a page, before the page's position is stored."""

from __future__ import annotations

import asyncio
import os
import sys

from agentbooks import Ledger
from agentbooks.events.publisher import Publisher
from agentbooks.events.runner import publisher_name
from agentbooks.events.sinks import NatsJetStreamSink

CRASH_EXIT_CODE = 17


class CrashingSink(NatsJetStreamSink):
    def __init__(self, *args, crash_after: int, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.left = crash_after

    async def publish(self, messages):  # type: ignore[no-untyped-def]
        if len(messages) >= self.left:
            await super().publish(messages[: self.left])
            os._exit(CRASH_EXIT_CODE)
        await super().publish(messages)
        self.left -= len(messages)


async def main(url: str, nats_url: str, stream: str, prefix: str, crash_after: int, page_size: int) -> None:
    with Ledger.open(url) as ledger:
        sink = CrashingSink(nats_url, stream=stream, subject_prefix=prefix, crash_after=crash_after)
        publisher = Publisher(ledger.service, sink, name=publisher_name(stream), subject_prefix=prefix,
                              page_size=page_size)
        await publisher.catch_up()


if __name__ == "__main__":
    url, nats_url, stream, prefix, crash_after, page_size = sys.argv[1:7]
    asyncio.run(main(url, nats_url, stream, prefix, int(crash_after), int(page_size)))
