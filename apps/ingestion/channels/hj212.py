"""HJ 212-2017 listener: monitoring stations (the field units, TCP clients, HJ 212-2017 6.1) connect here.

``Hj212Listener`` is an asyncio TCP server: it cuts ``##…\\r\\n`` packets out of each stream (garbage
between packets skipped, a maximum packet length, a read timeout for slow or silent peers), checks
length and CRC (Appendix A), answers as Flag asks (6.5: 9014 for uploads with the A bit, 9013 for
notifications, 9011 for requests), joins split packets and hands valid uploads to ``on_packet(packet,
peer)``. Malformed input is counted per error code (``error_counts``), logged, passed to ``on_error``
when given, and never ends the server.

An upload is answered (9014) only once ``on_packet`` has returned: when it raises ``StorageUnavailable``
(the database is down) the listener keeps the packet, unanswered, and tries again every 2 s, so nothing
answered is lost; the station's own resends meanwhile are repeats, stored once. One packet that breaks
the listener's own code is reported as E5204 and the connection goes on with the next one.

``make_ingest_callback`` is the Django glue: MN → data source through ``DataSource.settings["hj212"]
["mn"]`` (cached, refreshed every 30 s), records through ``ingest_readings(channel="hj212")``; unknown
MNs (E7005), unmapped pollutant codes (E7006) and bad packets (E7001–E7004) are logged as refusals, and
an upload that cannot be stored for any reason but a database that is down as E5204 with its bytes.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections import Counter
from collections.abc import Callable

from apps.protocols.codecs import hj212

log = logging.getLogger("carbonpark.hj212")

CHANNEL = "hj212"
E_UNPROCESSABLE = "E5204"  # a packet the listener or the callback could not process (apps.ingestion.errors)
RETRY_S = 2.0


class StorageUnavailable(Exception):
    """Raised by ``on_packet`` when the packet could not be stored because storage is down: the listener
    keeps it unanswered and tries again."""


async def _maybe_await(result):
    if inspect.isawaitable(result):
        await result


class Hj212Listener:
    """An asyncio TCP server for HJ 212 stations. ``port=0`` picks a free port (``self.port`` after
    ``start``). ``on_packet(packet, peer)`` and ``on_error(error, raw, peer)`` may be sync or async;
    ``peer`` is ``"host:port"``. ``verify_crc=False`` accepts packets whose CRC fails (still counted
    under E7002), for legacy devices (protocols.md §1.13). ``retry_s``: the pause between attempts to store
    an upload while ``on_packet`` raises StorageUnavailable."""

    def __init__(self, host: str, port: int, on_packet: Callable, *, on_error: Callable | None = None,
                 read_timeout: float = 120.0, max_segment: int = hj212.MAX_SEGMENT, verify_crc: bool = True,
                 max_connections: int = 1000, max_pending_parts: int = 256, retry_s: float = RETRY_S):
        self.host = host
        self.port = port
        self.on_packet = on_packet
        self.on_error = on_error
        self.read_timeout = read_timeout
        self.max_segment = max_segment
        self.verify_crc = verify_crc
        self.max_connections = max_connections
        self.retry_s = retry_s
        self.reassembler = hj212.Reassembler(max_pending_parts)
        self.error_counts: Counter[str] = Counter()  # E7001 … per code
        self.stats: Counter[str] = Counter()  # connections, packets, answers, callbacks, callback_errors …
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task] = set()

    # --- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("HJ 212 listener on %s:%s", self.host, self.port)

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        async with self._server:
            await self._server.serve_forever()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self):
        await self.start()
        return self

    async def __aexit__(self, *exc):
        await self.close()

    # --- one connection ---------------------------------------------------------------------------
    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        addr = writer.get_extra_info("peername") or ("?", 0)
        peer = f"{addr[0]}:{addr[1]}"
        try:
            if len(self._tasks) > self.max_connections:
                self.stats["refused_connections"] += 1
                return
            self.stats["connections"] += 1
            await self._serve(reader, writer, peer)
        except asyncio.CancelledError:
            pass
        except Exception:  # noqa: BLE001 - one peer must never take the server down
            self.stats["connection_errors"] += 1
            log.exception("HJ 212 connection %s failed", peer)
        finally:
            self._tasks.discard(task)
            try:
                writer.close()
                await asyncio.wait_for(writer.wait_closed(), 2)
            except (Exception, asyncio.CancelledError):  # noqa: BLE001
                pass

    async def _serve(self, reader, writer, peer: str) -> None:
        splitter = hj212.FrameSplitter(self.max_segment)
        while True:
            try:
                data = await asyncio.wait_for(reader.read(4096), self.read_timeout)
            except TimeoutError:
                self.stats["timeouts"] += 1
                left = splitter.flush()
                if left is not None:
                    await self._error(left, b"", peer)
                log.info("HJ 212 peer %s silent for %ss, closing", peer, self.read_timeout)
                return
            except (ConnectionError, OSError):
                return
            if not data:
                left = splitter.flush()
                if left is not None:
                    await self._error(left, b"", peer)
                return
            try:
                items = splitter.feed(data)
            except Exception as exc:  # noqa: BLE001 - start afresh with the next bytes
                splitter = hj212.FrameSplitter(self.max_segment)
                await self._unprocessable(exc, data, peer)
                continue
            for item in items:
                if isinstance(item, hj212.Hj212Error):
                    await self._error(item, b"", peer)
                    continue
                try:
                    await self._frame(item, writer, peer)
                except Exception as exc:  # noqa: BLE001 - one packet never ends the connection
                    await self._unprocessable(exc, item, peer)

    async def _frame(self, frame: bytes, writer, peer: str) -> None:
        self.stats["frames"] += 1
        result = hj212.parse_packet(frame, verify_crc=self.verify_crc)
        answers = hj212.answers_for(result)
        if isinstance(result, hj212.Hj212Error):
            await self._answer(answers, writer, peer)
            await self._error(result, frame, peer)
            return
        if not result.crc_ok:
            self.error_counts[hj212.E_CRC] += 1  # accepted anyway (verify_crc=False), still counted
        self.stats["packets"] += 1
        if result.cn not in hj212.UPLOAD_CNS:
            await self._answer(answers, writer, peer)
            return
        whole = self.reassembler.add(result)
        for dropped in self.reassembler.take_dropped():
            await self._error(dropped, hj212.build_packet(dropped.packet), peer)
        if whole is not None:
            await self._deliver(whole, peer)
        # 9014 only now: an upload the station sees answered has been stored (or kept as a rejection).
        await self._answer(answers, writer, peer)

    async def _deliver(self, whole: hj212.Packet, peer: str) -> None:
        self.stats["callbacks"] += 1
        while True:
            try:
                await _maybe_await(self.on_packet(whole, peer))
                return
            except StorageUnavailable as exc:
                self.stats["storage_retries"] += 1
                log.warning("HJ 212 upload %s from %s not stored, storage unavailable (%s); kept unanswered, "
                            "retrying in %.0f s", whole.qn, peer, exc, self.retry_s)
                await asyncio.sleep(self.retry_s)
            except Exception:  # noqa: BLE001
                self.stats["callback_errors"] += 1
                log.exception("HJ 212 on_packet failed for %s from %s", whole.mn, peer)
                return

    async def _unprocessable(self, exc: Exception, raw: bytes, peer: str) -> None:
        self.stats["frame_errors"] += 1
        log.error("HJ 212 input from %s could not be processed; reported as %s", peer, E_UNPROCESSABLE,
                  exc_info=exc)
        await self._error(hj212.Hj212Error(E_UNPROCESSABLE, type(exc).__name__), raw, peer)

    async def _answer(self, answers, writer, peer: str) -> None:
        for answer in answers:
            try:
                writer.write(hj212.build_packet(answer))
                await asyncio.wait_for(writer.drain(), 10)
                self.stats["answers"] += 1
            except Exception as exc:  # noqa: BLE001 - TimeoutError included
                log.info("HJ 212 answer to %s not sent: %s", peer, exc)
                return

    async def _error(self, err: hj212.Hj212Error, raw: bytes, peer: str) -> None:
        self.error_counts[err.code] += 1
        log.warning("HJ 212 %s from %s: %s", err.code, peer, err.detail)
        if self.on_error is None:
            return
        try:
            await _maybe_await(self.on_error(err, raw, peer))
        except Exception:  # noqa: BLE001
            self.stats["callback_errors"] += 1
            log.exception("HJ 212 on_error failed for %s", peer)


# --- Django glue ----------------------------------------------------------------------------------

class IngestCallback:
    """``on_packet``/``on_error`` for Hj212Listener that store through ``ingest_readings``.

    MN → source: ``DataSource.settings = {"hj212": {"mn": "...", "pollutants": {code: [dataCode, unit,
    quantity]}}}``; the optional ``pollutants`` extend the map for that source. Looked up every
    ``refresh_s`` seconds (sooner when an unknown MN arrives and the table is older than 2 s)."""

    def __init__(self, pmap: hj212.PollutantMap | None = None, refresh_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic):
        self.pmap = pmap or hj212.PollutantMap()
        self.refresh_s = refresh_s
        self.clock = clock
        self._by_mn: dict[str, tuple[str, hj212.PollutantMap]] = {}
        self._loaded_at: float | None = None
        self.max_refusals_per_minute = 60  # bad input is logged to the database at most this often
        self._window: tuple[float, int] = (clock(), 0)
        self.suppressed = 0

    def _load(self) -> None:
        from apps.sources.models import DataSource

        by_mn = {}
        for source_id, settings in DataSource.objects.filter(settings__has_key="hj212").values_list(
                "source_id", "settings"):
            conf = (settings or {}).get("hj212") or {}
            mn = conf.get("mn") if isinstance(conf, dict) else None
            if not mn:
                continue
            pmap = self.pmap
            if isinstance(conf.get("pollutants"), dict):
                try:
                    pmap = hj212.PollutantMap(dict(self.pmap.entries)).extend(conf["pollutants"])
                except (KeyError, TypeError, ValueError):
                    log.warning("HJ 212 source %s: bad settings.hj212.pollutants, using the defaults", source_id)
            by_mn[str(mn)] = (source_id, pmap)
        self._by_mn = by_mn
        self._loaded_at = self.clock()

    def source_for(self, mn: str) -> tuple[str, hj212.PollutantMap] | None:
        now = self.clock()
        if self._loaded_at is None or now - self._loaded_at >= self.refresh_s or (
                mn not in self._by_mn and now - self._loaded_at >= 2.0):
            self._load()
        return self._by_mn.get(mn)

    def ingest(self, packet: hj212.Packet, peer: str):
        """Sync: records of one (reassembled) upload, with refusals for what cannot become records.
        Raises StorageUnavailable when the database is down (the listener keeps the packet and retries);
        any other failure keeps the upload as an E5204 rejection with its bytes (R-9.3.1)."""
        from django.db import close_old_connections

        from apps.core.db import database_unavailable

        try:
            close_old_connections()
            return self._ingest(packet, peer)
        except Exception as exc:  # noqa: BLE001 - sorted below
            if database_unavailable(exc):
                raise StorageUnavailable(f"{type(exc).__name__}: {exc}") from exc
            log.error("HJ 212 upload %s from %s could not be stored; kept as rejection E5204", packet.qn, peer,
                      exc_info=exc)
            return self._keep_unprocessable(packet, exc, peer)

    def _ingest(self, packet: hj212.Packet, peer: str):
        from apps.ingestion import errors
        from apps.ingestion.channels.payloads import Refusal, raw_of
        from apps.ingestion.services import ingest_readings

        raw, raw_bytes = raw_of(hj212.encode_segment(packet).encode("utf-8", "surrogatepass"))
        found = self.source_for(packet.mn)
        refused = []
        records: list[dict] = []
        if found is None:
            refused.append(Refusal(raw, errors.E7005, {"mn": packet.mn[:64]}, raw_bytes=raw_bytes))
        else:
            source_id, pmap = found
            records, unmapped = hj212.to_readings(packet, source_id, pmap)
            refused += [Refusal(raw, errors.E7006, {"code": code}, source_id, code[:40],
                                raw_bytes=None if i else raw_bytes) for i, code in enumerate(unmapped)]
        if not records and not refused:
            return None
        return ingest_readings(records, channel=CHANNEL, actor=f"hj212:{peer}", refused=refused)

    def _keep_unprocessable(self, packet: hj212.Packet, exc: Exception, peer: str):
        from apps.core.db import database_unavailable
        from apps.ingestion.channels.payloads import unprocessable
        from apps.ingestion.services import ingest_readings

        found = self._by_mn.get(packet.mn)
        refusal = unprocessable(hj212.encode_segment(packet).encode("utf-8", "surrogatepass"), exc,
                                found[0] if found else "")
        try:
            return ingest_readings([], channel=CHANNEL, actor=f"hj212:{peer}", refused=[refusal])
        except Exception as again:
            if database_unavailable(again):
                raise StorageUnavailable(f"{type(again).__name__}: {again}") from again
            raise

    def refuse(self, err: hj212.Hj212Error, raw: bytes, peer: str):
        """Sync: log a bad packet as a refusal with its E70xx code (at most ``max_refusals_per_minute``;
        the rest are only counted by the listener, so a flood of garbage cannot flood the database)."""
        from django.db import close_old_connections

        from apps.ingestion import errors
        from apps.ingestion.channels.payloads import Refusal, raw_of
        from apps.ingestion.services import ingest_readings

        start, count = self._window
        now = self.clock()
        if now - start >= 60:
            start, count = now, 0
        if count >= self.max_refusals_per_minute:
            self.suppressed += 1
            return None
        self._window = (start, count + 1)
        close_old_connections()
        code = getattr(errors, err.code)
        source_ref = ""
        if err.packet is not None:
            found = self.source_for(err.packet.mn)
            source_ref = found[0] if found else ""
        params = {"detail": err.detail, "cn": err.packet.cn if err.packet else ""}
        text, raw_bytes = raw_of(raw) if raw else (err.detail, None)
        return ingest_readings([], channel=CHANNEL, actor=f"hj212:{peer}",
                               refused=[Refusal(text, code, params, source_ref, raw_bytes=raw_bytes)])

    async def on_packet(self, packet: hj212.Packet, peer: str):
        from asgiref.sync import sync_to_async

        return await sync_to_async(self.ingest)(packet, peer)

    async def on_error(self, err: hj212.Hj212Error, raw: bytes, peer: str):
        from asgiref.sync import sync_to_async

        return await sync_to_async(self.refuse)(err, raw, peer)

    async def aclose(self) -> None:
        """Close the database connection of the worker thread the callbacks ran in."""
        from asgiref.sync import sync_to_async
        from django.db import connections

        await sync_to_async(connections.close_all)()


def make_ingest_callback(pmap: hj212.PollutantMap | None = None, refresh_s: float = 30.0) -> IngestCallback:
    """The Django side of the listener: ``Hj212Listener(host, port, cb.on_packet, on_error=cb.on_error)``."""
    return IngestCallback(pmap, refresh_s)


def make_listener(host: str, port: int, **kw) -> tuple[Hj212Listener, IngestCallback]:
    """A listener that stores what it receives, and its callback (``await cb.aclose()`` when done)."""
    cb = make_ingest_callback()
    return Hj212Listener(host, port, cb.on_packet, on_error=cb.on_error, **kw), cb
