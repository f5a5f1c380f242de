"""Test helpers for MQTT: a mosquitto we own (to kill and restart) and a collecting subscriber."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from typing import Any, Self

import aiomqtt

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
SHARED_BROKER = ("127.0.0.1", 1883)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class Mosquitto:
    """A mosquitto on 127.0.0.1:`port`, with on-disk persistence so that a persistent
    session survives a graceful restart."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="mqtt-broker-")
        # Started as root, mosquitto drops to its own user: without this it cannot write
        # its persistence file into a root-owned 0700 temp dir, and sessions do not persist.
        os.chmod(self.dir, 0o777)
        self.conf = os.path.join(self.dir, "mosquitto.conf")
        with open(self.conf, "w") as f:
            f.write(
                f"listener {self.port} 127.0.0.1\n"
                "allow_anonymous true\n"
                "persistence true\n"
                f"persistence_location {self.dir}/\n"
                "max_queued_messages 100000\n"
                # Save on every change, so that even kill -9 keeps the subscriber's session.
                "autosave_on_changes true\n"
                "autosave_interval 1\n"
            )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start and wait (bounded) until it listens; raises RuntimeError if it does not."""
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", self.conf],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if reachable("127.0.0.1", self.port):
                return
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"mosquitto did not listen on 127.0.0.1:{self.port}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop with `sig` (SIGTERM saves sessions to disk, SIGKILL does not)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def save(self, timeout: float = 5.0) -> None:
        """Make mosquitto write its persistence file now (SIGUSR1) and wait until it has.

        Its own autosave runs on a timer, so a kill -9 right after a subscription can find
        the subscriber's session not yet on disk; tests that kill the broker save first.
        """
        assert self.proc is not None, "start() first"
        db = os.path.join(self.dir, "mosquitto.db")
        before = os.stat(db).st_mtime_ns if os.path.exists(db) else None
        self.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.path.exists(db) and os.stat(db).st_mtime_ns != before:
                time.sleep(0.05)  # let the write finish
                return
            time.sleep(0.01)
        raise RuntimeError("mosquitto did not write its persistence file")

    def cleanup(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def broker_at(port: int | None = None) -> Any:
    b = Mosquitto(port)
    try:
        b.start()
        yield b
    finally:
        b.cleanup()


class Collector:
    """Subscribes to `pattern` at QoS 1 and records every MQTT message; reconnects.

    With `client_id` set it keeps a persistent session (clean_session False), so the
    broker queues messages for it while it is away.
    """

    def __init__(self, port: int, pattern: str, client_id: str | None = None) -> None:
        self.port = port
        self.pattern = pattern
        self.client_id = client_id
        self.messages: list[tuple[str, list[dict[str, Any]]]] = []
        self.subscribed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def events(self) -> list[dict[str, Any]]:
        return [e for _, batch in self.messages for e in batch]

    def ids(self) -> set[Any]:
        return {e["id"] for e in self.events}

    async def __aenter__(self) -> Self:
        self._task = asyncio.get_running_loop().create_task(self._run())
        await asyncio.wait_for(self.subscribed.wait(), 5)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        while True:
            try:
                async with aiomqtt.Client(
                    "127.0.0.1",
                    self.port,
                    identifier=self.client_id,
                    clean_session=False if self.client_id else None,
                    timeout=2,
                ) as client:
                    await client.subscribe(self.pattern, qos=1)
                    self.subscribed.set()
                    async for msg in client.messages:
                        payload = msg.payload
                        assert isinstance(payload, bytes)
                        self.messages.append((str(msg.topic), json.loads(payload.decode("utf-8"))))
            except aiomqtt.MqttError:
                await asyncio.sleep(0.05)

    async def wait_for_ids(self, wanted: set[Any], timeout: float = 10) -> set[Any]:
        """Wait (bounded) until every id in `wanted` was seen; returns the missing ones."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            missing = wanted - self.ids()
            if not missing:
                return missing
            await asyncio.sleep(0.02)
        return wanted - self.ids()


@contextlib.asynccontextmanager
async def collecting(port: int, pattern: str, client_id: str | None = None) -> AsyncIterator[Collector]:
    async with Collector(port, pattern, client_id) as c:
        yield c


class Proxy:
    """A TCP proxy to 127.0.0.1:`target` that can black-hole traffic and cut connections,
    to put the publisher in the middle of a round when the network fails."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = 0
        self.blackhole = False  # while True, bytes in either direction are swallowed
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.cut()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    def cut(self) -> None:
        """Close every proxied connection (as a dead route or a NAT timeout would)."""
        for w in list(self._writers):
            w.close()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if not self.blackhole:
                    writer.write(data)
                    await writer.drain()
        except (OSError, RuntimeError):
            pass
        finally:
            writer.close()
