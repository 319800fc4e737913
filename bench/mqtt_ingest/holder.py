"""10 000 concurrent device connections: one spawned asyncio process opening raw TCP connections with a
hand-built MQTT 3.1.1 CONNECT (clean session, keep-alive 120 s), checking each CONNACK (0x20 0x02 0x00
0x00) and keeping them open with a PINGREQ every 60 s. The parent drives it over a pipe:
``open`` -> counts, ``check`` (PINGREQ on every connection, count the PINGRESPs) -> counts, ``stop``."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time

CONNACK_OK = b"\x20\x02\x00\x00"
PINGREQ, PINGRESP, DISCONNECT = b"\xc0\x00", b"\xd0\x00", b"\xe0\x00"


def remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def connect_packet(client_id: str, keepalive: int = 120) -> bytes:
    """CONNECT, MQTT 3.1.1: protocol "MQTT", level 4, flags 0x02 (clean session), keep-alive, client id."""
    cid = client_id.encode()
    body = b"\x00\x04MQTT\x04\x02" + keepalive.to_bytes(2, "big") + len(cid).to_bytes(2, "big") + cid
    return b"\x10" + remaining_length(len(body)) + body


class Holder:
    def __init__(self, host: str, port: int, n: int, concurrency: int, prefix: str = "bench-idle"):
        self.host, self.port, self.n, self.prefix = host, port, n, prefix
        self.sem = asyncio.Semaphore(concurrency)
        self.writers: dict[int, asyncio.StreamWriter] = {}
        self.pong: dict[int, int] = {}
        self.ping_round = 0
        self.refused = self.failed = self.dropped = 0
        self.errors: list[str] = []
        self.tasks: set = set()

    async def open_one(self, i: int) -> None:
        err = ""
        for attempt in range(4):
            writer = None
            async with self.sem:
                try:
                    reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), 15)
                    writer.write(connect_packet(f"{self.prefix}-{i:05d}"))
                    ack = await asyncio.wait_for(reader.readexactly(4), 30)
                except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
                    err = f"connection {i}, attempt {attempt + 1}: {exc!r}"
                    if writer is not None:
                        writer.close()
                    await asyncio.sleep(0.5)
                    continue
            if ack != CONNACK_OK:
                self.refused += 1
                self.errors.append(f"connection {i}: CONNACK {ack.hex()}")
                writer.close()
                return
            self.writers[i] = writer
            task = asyncio.create_task(self.read_loop(i, reader))
            self.tasks.add(task)
            return
        self.failed += 1
        self.errors.append(err)

    async def read_loop(self, i: int, reader) -> None:
        try:
            while True:
                packet = await reader.readexactly(2)
                if packet == PINGRESP:
                    self.pong[i] = self.ping_round
                elif len(self.errors) < 50:
                    self.errors.append(f"connection {i}: unexpected {packet.hex()}")
        except (OSError, asyncio.IncompleteReadError):
            if self.writers.pop(i, None) is not None:
                self.dropped += 1

    def ping_all(self) -> None:
        self.ping_round += 1
        for w in list(self.writers.values()):
            w.write(PINGREQ)

    async def keepalive(self) -> None:
        while True:
            await asyncio.sleep(60)
            self.ping_all()

    async def open_all(self) -> dict:
        t = time.perf_counter()
        await asyncio.gather(*(self.open_one(i) for i in range(self.n)))
        self.tasks.add(asyncio.create_task(self.keepalive()))
        return {**self.counts(), "seconds": time.perf_counter() - t}

    async def check(self, timeout: float = 20) -> dict:
        """PINGREQ on every open connection; alive = those whose PINGRESP came back."""
        self.ping_all()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.pong.get(i) == self.ping_round for i in self.writers):
                break
            await asyncio.sleep(0.1)
        alive = sum(1 for i in self.writers if self.pong.get(i) == self.ping_round)
        return {**self.counts(), "alive": alive}

    def counts(self) -> dict:
        return {"open": len(self.writers), "refused": self.refused, "failed": self.failed,
                "dropped": self.dropped, "errors": self.errors[:10]}

    async def close_all(self) -> None:
        for w in list(self.writers.values()):
            w.write(DISCONNECT)
            w.close()
        self.writers.clear()
        for t in self.tasks:
            t.cancel()


async def _serve(conn, host: str, port: int, n: int, concurrency: int) -> None:
    holder = Holder(host, port, n, concurrency)
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue = asyncio.Queue()

    def on_command():
        try:
            commands.put_nowait(conn.recv())
        except (EOFError, OSError):  # the parent went away
            loop.remove_reader(conn.fileno())
            commands.put_nowait("stop")

    loop.add_reader(conn.fileno(), on_command)
    while True:
        cmd = await commands.get()
        if cmd == "open":
            conn.send(await holder.open_all())
        elif cmd == "check":
            conn.send(await holder.check())
        else:
            await holder.close_all()
            await asyncio.sleep(0.2)
            with contextlib.suppress(OSError):
                conn.send("stopped")
            return


def holder_main(conn, host: str, port: int, n: int, concurrency: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops it
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    asyncio.run(_serve(conn, host, port, n, concurrency))


class ConnectionHolder:
    """The parent's handle: ``open()``, ``check()``, ``stop()`` (also terminates the process)."""

    def __init__(self, host: str, port: int, n: int, concurrency: int = 100):
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=holder_main, args=(child, host, port, n, concurrency), daemon=True)
        self.proc.start()

    def _ask(self, cmd: str, timeout: float):
        self.conn.send(cmd)
        if not self.conn.poll(timeout):
            raise TimeoutError(f"connection holder: no answer to {cmd!r} within {timeout} s")
        return self.conn.recv()

    def open(self, timeout: float = 600) -> dict:
        return self._ask("open", timeout)

    def check(self, timeout: float = 60) -> dict:
        return self._ask("check", timeout)

    def psutil_processes(self):
        import psutil

        try:
            return [psutil.Process(self.proc.pid)]
        except psutil.Error:
            return []

    def stop(self) -> None:
        if self.proc.is_alive():
            with contextlib.suppress(OSError, TimeoutError, EOFError):
                self._ask("stop", 30)
            self.proc.join(5)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(5)
