"""DL/T 645-2007 (and -1997) meters on a serial line (RS-485, pyserial) or behind a serial-to-TCP
transparent gateway: one request at a time on the bus, frames found with the codec's scanner (FE
preambles, garbage, split reads), a back-off for meters that do not answer (R-5.2.1.3)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from apps.protocols.codecs import dlt645 as codec
from apps.protocols.pollers import Backoff, PollResult, poll_started, stamp
from apps.protocols.pollers.serial import SerialLine


@dataclass
class MeterPoint:
    di: str
    data_code: str
    unit: str | None = None


@dataclass
class Dlt645Meter:
    address: str
    source_id: str
    points: list[MeterPoint]
    backoff: Backoff = field(default_factory=Backoff)


class Dlt645Poller:
    """One bus: ``host``/``port`` of a transparent gateway (TCP), or ``serial`` (e.g. /dev/ttyUSB0) with
    ``baudrate``/``parity``/``bytesize``/``stopbits`` (2007 meters: 2400 8E1, the defaults)."""

    def __init__(self, meters: list[Dlt645Meter], *, host: str | None = None, port: int | None = None,
                 timeout: float = 1.5, serial: str | None = None, baudrate: int = 2400, parity: str = "E",
                 bytesize: int = 8, stopbits: float = 1):
        if not serial and (not host or not port):
            raise ValueError("Dlt645Poller needs host and port (TCP gateway) or serial (a serial port)")
        self.meters, self.host, self.port, self.timeout = meters, host, port, timeout
        self.line = SerialLine(serial, baudrate=baudrate, bytesize=bytesize, parity=parity, stopbits=stopbits,
                               write_timeout=timeout) if serial else None
        self.reader = self.writer = None
        self.lock = asyncio.Lock()

    async def _connect(self):
        if self.line is not None:
            await self.line.open()
        elif self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port),
                                                              self.timeout)

    async def close(self) -> None:
        if self.line is not None:
            await self.line.close()
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    async def _send(self, frame: bytes) -> None:
        if self.line is not None:
            self.line.discard()  # a late reply to an earlier request must not be read as this answer
            await self.line.write(frame)
        else:
            self.writer.write(frame)
            await self.writer.drain()

    async def _receive(self, remaining: float) -> bytes:
        if self.line is not None:
            return await self.line.read(remaining)  # b"": nothing came in time
        chunk = await asyncio.wait_for(self.reader.read(512), remaining)
        if not chunk:
            raise ConnectionError("gateway closed the connection")
        return chunk

    async def _transact(self, address: str, di: str):
        """Send one read, return the parsed reply for this meter (or a Dlt645Error)."""
        await self._send(codec.build_read_request(address, di))
        scanner = codec.FrameScanner()
        deadline = time.monotonic() + self.timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"meter {address} did not answer {di}")
            chunk = await self._receive(remaining)
            if not chunk:
                raise TimeoutError(f"meter {address} did not answer {di}")
            for item in scanner.feed(chunk):
                if isinstance(item, codec.Dlt645Error):
                    return item
                if item.address == address and item.is_reply:
                    return codec.parse_reply(item)

    async def poll(self, meters: list[Dlt645Meter] | None = None) -> PollResult:
        """Read every due meter once (or only ``meters``, a subset of this gateway's); readings carry this
        poll's start time."""
        started, t0 = poll_started()
        result = PollResult()
        async with self.lock:
            for meter in self.meters if meters is None else meters:
                if not meter.backoff.due():
                    result.skipped.append(meter.source_id)
                    continue
                try:
                    await self._connect()
                    for point in meter.points:
                        reply = await self._transact(meter.address, point.di)
                        if isinstance(reply, codec.Dlt645Error):
                            result.errors.append((meter.source_id, reply.code, reply.detail))
                            continue
                        value = reply.value[0] if isinstance(reply.value, tuple) else reply.value
                        rec = {"sourceId": meter.source_id, "dataCode": point.data_code,
                               "timestamp": stamp(started), "value": value, "status": "N"}
                        if point.unit or reply.unit:
                            rec["unit"] = point.unit or reply.unit
                        result.records.append(rec)
                    meter.backoff.ok()
                except (TimeoutError, OSError, ConnectionError) as exc:
                    meter.backoff.failed()
                    result.errors.append((meter.source_id, "E7102", str(exc) or exc.__class__.__name__))
                    if self.line is None:
                        await self.close()  # a stale reply must not be read as the next answer
                    elif not isinstance(exc, TimeoutError):
                        await self.line.close()  # reopened on the next transaction (unplugged adapter …)
                except Exception as exc:  # noqa: BLE001 - one meter's surprise never ends the cycle
                    meter.backoff.failed()
                    result.errors.append((meter.source_id, "E7202",
                                          f"meter {meter.address}: {type(exc).__name__}: {exc}"[:500]))
                    if self.line is None:
                        await self.close()
        result.seconds = time.perf_counter() - t0
        return result
