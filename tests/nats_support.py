"""NATS helpers for the tests: a private, restartable nats-server, and a consumer that reads a stream."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateNatsServer:
    """``nats-server -js`` on a free 127.0.0.1 port with its own store directory; stop and start keep both."""

    def __init__(self, store_dir: Path) -> None:
        binary = shutil.which("nats-server") or ("/usr/sbin/nats-server" if Path("/usr/sbin/nats-server").exists()
                                                 else None)
        if binary is None:
            pytest.skip("the nats-server binary is not installed (apt-get install nats-server)")
        self.binary = binary
        self.store_dir = store_dir
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store_dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"nats-server exited with {self.process.returncode}")
                time.sleep(0.05)
        raise RuntimeError("nats-server did not start listening")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self.process = None


def unique_names() -> tuple[str, str]:
    """A stream and subject prefix no other test (or helper on the shared server) uses."""
    tag = uuid.uuid4().hex[:10]
    return f"TEST_{tag.upper()}", f"test{tag}"


async def _read_subject(url: str, stream: str, subject: str) -> list[tuple[dict, dict]]:
    """Every message stored on ``subject`` so far, in stream order, as (headers, body)."""
    import nats

    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        pending = info.state.messages
        found: list[tuple[dict, dict]] = []
        if pending == 0:
            return found
        sub = await js.subscribe(subject, stream=stream, ordered_consumer=True)
        try:
            while True:
                try:
                    msg = await sub.next_msg(timeout=2)
                except nats.errors.TimeoutError:
                    return found
                found.append((dict(msg.headers or {}), json.loads(msg.data)))
                if msg.metadata.num_pending == 0:
                    return found
        finally:
            await sub.unsubscribe()
    finally:
        await nc.close()


def read_subject(url: str, stream: str, subject: str) -> list[tuple[dict, dict]]:
    return asyncio.run(_read_subject(url, stream, subject))


async def _delete_stream(url: str, stream: str) -> None:
    import nats
    from nats.js.errors import NotFoundError

    nc = await nats.connect(url)
    try:
        await nc.jetstream().delete_stream(stream)
    except NotFoundError:
        pass
    finally:
        await nc.close()


def delete_stream(url: str, stream: str) -> None:
    asyncio.run(_delete_stream(url, stream))
