"""DL/T 645-2007 (and -1997) meters behind a serial-to-TCP transparent gateway: one request at a time on
the bus, frames found with the codec's scanner (FE preambles, garbage, split reads), a back-off for
meters that do not answer (R-5.2.1.3)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from apps.ingestion.codecs import dlt645 as codec
from apps.ingestion.pollers import Backoff, PollResult, poll_started, stamp


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
    def __init__(self, meters: list[Dlt645Meter], *, host: str, port: int, timeout: float = 1.5):
        self.meters, self.host, self.port, self.timeout = meters, host, port, timeout
        self.reader = self.writer = None
        self.lock = asyncio.Lock()

    async def _connect(self):
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port),
                                                              self.timeout)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    async def _transact(self, address: str, di: str):
        """Send one read, return the parsed reply for this meter (or a Dlt645Error)."""
        self.writer.write(codec.build_read_request(address, di))
        await self.writer.drain()
        scanner = codec.FrameScanner()
        deadline = time.monotonic() + self.timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"meter {address} did not answer {di}")
            chunk = await asyncio.wait_for(self.reader.read(512), remaining)
            if not chunk:
                raise ConnectionError("gateway closed the connection")
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
                    await self.close()  # a stale reply must not be read as the next answer
        result.seconds = time.perf_counter() - t0
        return result
