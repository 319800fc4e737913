"""DL/T 645 meters behind a transparent serial-to-TCP gateway (protocols.md §2.1: frames pass unchanged).

An asyncio TCP server: each connection is the RS-485 line; frames are found with the codec's
``FrameScanner`` (so requests may come with FE preambles and in pieces). A meter answers:
- read data 11H (2007) / 01H (1997) for its address → a normal reply 91H/81H; energy (00010000, 9010 …)
  grows with time, voltages/currents/power/power factor/frequency carry plausible values;
- a data identifier it does not have → abnormal reply D1H/C1H with ERR=02 ("no requested data");
- read address 13H to AA…AA → 93H with its address (first meter only, as on a point-to-point line).
Options: ``preamble`` FE bytes before each reply, ``garbage`` bytes before that, ``delay`` seconds
before answering, ``chunk`` to send replies in pieces of that many bytes. Binds 127.0.0.1, port 0 = free.

    sim = await start(port=0, addresses=["000102030425"])
    ... asyncio.open_connection("127.0.0.1", sim.port) ...
    await sim.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Iterable

from apps.protocols.codecs import dlt645 as codec

ERR_NO_DATA = 0x02


class Dlt645MeterSimulator:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, addresses: Iterable[str] = ("000102030425",), *,
                 preamble: int = 4, garbage: bytes = b"", delay: float = 0.0, chunk: int = 0,
                 start_energy: float = 1206.42, kwh_per_second: float = 0.01,
                 unsupported: Iterable[str] = ()) -> None:
        self.host = host
        self.port = port
        self.addresses = [a.upper() for a in addresses]
        self.preamble = preamble
        self.garbage = garbage
        self.delay = delay
        self.chunk = chunk
        self.start_energy = start_energy
        self.kwh_per_second = kwh_per_second
        self.unsupported = {d.upper() for d in unsupported}
        self.received: list[codec.Dlt645Frame | codec.Dlt645Error] = []
        self._t0 = time.monotonic()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def value(self, address: str, di: str, elapsed: float | None = None):
        """The simulated value for a DI (None when this meter does not have it)."""
        di = di.upper()
        if di in self.unsupported:
            return None
        ident = codec.lookup(di)
        if ident is None:
            return None
        t = time.monotonic() - self._t0 if elapsed is None else elapsed
        n = self.addresses.index(address) if address in self.addresses else 0
        wobble = math.sin(t / 5 + n)
        energy = round(self.start_energy + n * 100 + self.kwh_per_second * t, 2)
        name = ident.name
        if "energy" in name:
            if "forward active" not in name or "settlement" in name:
                one = round(energy / 2, 2) if "combined active" in name else 0.0
            else:
                one = energy if ("total" in name or "block" in name) else round(energy / 4, 2)
            if ident.count is None:  # FF block: total + 4 tariffs
                return (one, *(round(one / 4, 2),) * 4)
            return one
        if "voltage" in name:
            v = round(220.0 + 2 * wobble, 1 if ident.decimals else 0)
            return (v, v, v) if ident.count == 3 else v
        if "current" in name:
            a = round(5.0 + n + wobble, ident.decimals)
            return (a, a, a) if ident.count == 3 else a
        if "power factor" in name:
            return (0.95,) * ident.count if ident.count and ident.count > 1 else 0.95
        if "power" in name or "demand" in name:
            p = round(3.3 + 0.1 * wobble, 4)
            return (p * 3, p, p, p) if ident.count == 4 else p
        if "frequency" in name:
            return round(50.0 + 0.02 * wobble, 2)
        if "temperature" in name:
            return 31.5
        if "ratio" in name:
            return 1.0
        if "angle" in name:
            return (0.0, 120.0, 240.0) if ident.count == 3 else 0.0
        return None

    def answer(self, frame: codec.Dlt645Frame) -> bytes | None:
        """The reply of the meters on the line to one request frame (None: nobody answers)."""
        if frame.is_reply:
            return None
        if frame.control == codec.C_READ_ADDRESS:
            if frame.address == codec.WILDCARD_ADDRESS and self.addresses:
                return codec.build_address_reply(self.addresses[0], preamble=self.preamble)
            return None
        if frame.function not in (codec.C_READ, codec.C_READ_1997) or frame.address not in self.addresses:
            return None
        version = "2007" if frame.function == codec.C_READ else "1997"
        di_len = 4 if version == "2007" else 2
        if len(frame.data) < di_len:
            return codec.build_error_reply(frame.address, 0x01, version=version, preamble=self.preamble)
        di = codec.di_from_wire(frame.data[:di_len])
        value = self.value(frame.address, di)
        if value is None:
            return codec.build_error_reply(frame.address, ERR_NO_DATA, version=version, preamble=self.preamble)
        return codec.build_read_reply(frame.address, di, value, preamble=self.preamble)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        scanner = codec.FrameScanner()
        try:
            while data := await reader.read(1024):
                for item in scanner.feed(data):
                    self.received.append(item)
                    if not isinstance(item, codec.Dlt645Frame):
                        continue
                    reply = self.answer(item)
                    if reply is None:
                        continue
                    if self.delay:
                        await asyncio.sleep(self.delay)
                    reply = self.garbage + reply
                    step = self.chunk or len(reply)
                    for i in range(0, len(reply), step):
                        writer.write(reply[i:i + step])
                        await writer.drain()
                        if self.chunk:
                            await asyncio.sleep(0.01)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def start(self) -> int:
        """Start listening; returns the port."""
        self._t0 = time.monotonic()
        self._server = await asyncio.start_server(self._client, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for w in list(self._writers):
            w.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 2)
        self._server = None

    async def __aenter__(self) -> Dlt645MeterSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()


async def start(host: str = "127.0.0.1", port: int = 0, addresses: Iterable[str] = ("000102030425",),
                **options) -> Dlt645MeterSimulator:
    """Start a simulator (options: preamble, garbage, delay, chunk, start_energy, kwh_per_second,
    unsupported)."""
    sim = Dlt645MeterSimulator(host, port, addresses, **options)
    await sim.start()
    return sim
