"""The agent: poll loops (one per device), the disk buffer, a sender task and the downlink command handler.

Everything except the MQTT network thread runs on one asyncio loop, which alone touches the SQLite buffer.

- Polling: each device every ``interval_s`` (60-3600 s), aligned to multiples of the interval and staggered
  by 1 s per device; a reading's timestamp is the poll's scheduled time. Missed polls are not caught up.
- Range check (R-5.2.1.6): a value outside the point's [min, max] is kept as read and flagged status ``T``
  (HJ 212 "over limit"), counted in ``stats["out_of_range"]``; a missing or non-finite value is dropped and
  counted in ``stats["dropped"]``.
- Buffer: ``Buffer.put`` commits (WAL, synchronous=FULL) before anything is sent: a reading is "accepted"
  once it is on disk, and survives SIGKILL.
- Sending: the oldest pending rows first (time order, R-8.4.2.1), as JSON arrays of records per source to
  ``carbonpark/{park}/{source}/data`` with QoS 1; rows are marked acknowledged on the PUBACK, which also
  advances the source's last acknowledged timestamp (R-8.4.2.3). Delivery is at least once: a row whose
  PUBACK was lost with the connection is sent again (the platform de-duplicates, R-8.4.2.4).
- Backfill: rows taken while disconnected, rows pending when the connection dropped, rows left pending by a
  previous run, and rows republished by ``resend`` carry ``"backfill": true``.
- Refused publishes (MQTT 5 PUBACK reason code >= 0x80, e.g. 135 when the broker's ACL does not let this
  gateway write for that source): the rows stay pending, the source is held back (its rows are not sent)
  for ``refused_retry_s`` (300 s) and then tried again; an error is logged, a ``publish_refused`` alarm is
  published and the gateway's status reports the source under ``refused`` until a publish of it succeeds.
- Alarms: eviction of unsent rows (buffer full) and refused publishes are published, retained, to the
  gateway's status topic ``carbonpark/{park}/{client_id}/status`` as
  ``{"state": "online", "alarm": "buffer_evicted", "evicted": n, "at": "<timestamp>"}`` or
  ``{"state": "online", "alarm": "publish_refused", "sourceId": s, "reasonCode": 135, "reason": "...", ...}``.
- Health (health.py): every poll updates the device's health (last good poll, consecutive failures, last
  error code and message) and is logged; the gateway's status (retained) carries every device's health and
  the refused sources, republished when they change (at most every ``STATUS_MIN_GAP_S``).
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import math
from collections import OrderedDict
from zoneinfo import ZoneInfo

from .buffer import Buffer, Reading
from .clock import Clock, ScaledClock
from .commands import CommandsMixin, parse_ts  # noqa: F401 - parse_ts is part of this module's API
from .config import Config, Device
from .drivers import make_driver
from .health import DeviceHealth, error_of, iso, reason_text
from .publisher import Publisher, ReconnectPolicy, topic

log = logging.getLogger("apps.edge.agent")

STAGGER_MS = 1000
PUBACK_TIMEOUT_S = 30.0
FLUSH_ON_STOP_S = 3.0
REFUSED_RETRY_S = 300.0
STATUS_MIN_GAP_S = 5.0


def format_ts(ts_ms: int, tz: ZoneInfo) -> str:
    """Record timestamp (interfaces §1): ``YYYY-MM-DD HH:MM:SS.SSS`` in the park's time zone."""
    moment = dt.datetime.fromtimestamp(ts_ms // 1000, tz)
    return moment.strftime("%Y-%m-%d %H:%M:%S") + f".{ts_ms % 1000:03d}"


class Agent(CommandsMixin):
    def __init__(self, config: Config, *, clock: Clock | None = None, policy: ReconnectPolicy | None = None,
                 drivers: dict | None = None, sleep=None) -> None:
        self.config = config
        self.park = config.platform.park
        self.tz = config.platform.tz
        self.devices: dict[str, Device] = {d.source_id: d for d in config.devices}
        self.clock = clock
        self.policy = policy
        self.sleep = sleep  # the reconnect wait (tests gate it); default: an interruptible time.sleep
        self.drivers = drivers or {}
        self.stats = dict.fromkeys(("polls", "read_errors", "out_of_range", "dropped", "accepted", "sent",
                                    "refused"), 0)
        self.intervals: dict[str, int] = {d.source_id: d.interval_s for d in config.devices}
        self.buffer: Buffer | None = None
        self.publisher: Publisher | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._last_acked: dict[str, int | None] = {}
        self._recent_cmds: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._inflight: dict[int, asyncio.Future] = {}
        self._ready = None
        self.health: dict[str, DeviceHealth] = {}
        self.refused: dict[str, dict] = {}  # source -> {"reasonCode", "reason", "since"} (ms), persisted
        self._retry_at: dict[str, float] = {}  # source -> loop time of its next try
        self.refused_retry_s = REFUSED_RETRY_S
        self.status_min_gap_s = STATUS_MIN_GAP_S
        self._status_dirty = True
        self._status_sent_at = -1e9
        self._gateway_snapshot: dict = {"state": "online"}
        self._refused_now: frozenset[str] = frozenset()  # the publisher thread reads this copy of refused

    # lifecycle -----------------------------------------------------------------------------------------------
    async def run(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._online = asyncio.Event()
        self._wake_sender = asyncio.Event()
        self._wake = {s: asyncio.Event() for s in self.devices}
        self._poll_now = dict.fromkeys(self.devices, False)
        self._due: dict[str, int] = {}
        self._last_poll: dict[str, int] = {}
        self.buffer = Buffer(self.config.buffer.path, self.config.buffer.max_bytes)
        left = self.buffer.mark_pending_backfill()
        if left:
            log.info("%d readings from a previous run are pending; they will be sent as backfill", left)
        for source in self.devices:
            self._last_acked[source] = self.buffer.last_acked(source)
            saved = self.buffer.get_state(f"interval:{source}")
            if saved:
                self.intervals[source] = int(saved)
            self.health[source] = DeviceHealth.loads(self.buffer.get_state(f"health:{source}"))
        for source, text in self.buffer.states("refused:").items():
            if source in self.devices:  # tried again at once: the ACL may have been fixed meanwhile
                self.refused[source] = json.loads(text)
            else:
                self.buffer.delete_state(f"refused:{source}")
        self._refused_now = frozenset(self.refused)
        self._snapshot()
        if self.clock is None:
            scale = self.config.testing.time_scale
            start = None
            if scale != 1.0:  # compressed time must not run backwards over a restart
                start = max(ScaledClock().now_ms(), (self.buffer.max_ts_ms() or 0) + 1000)
            self.clock = ScaledClock(scale, start)
        for source, device in self.devices.items():
            self.drivers.setdefault(source, make_driver(device))
        self.publisher = Publisher(
            self.config.platform, sources=list(self.devices), policy=self.policy, sleep=self.sleep,
            on_connected=lambda: self._threadsafe(self._set_online),
            on_disconnected=lambda: self._threadsafe(self._set_offline),
            on_puback=lambda mid, rc: self._threadsafe(self._puback, mid, rc),
            on_message=lambda t, p: self._threadsafe(self._on_command, t, p),
            online_payload=self._online_payload, gateway_payload=lambda: self._gateway_snapshot,
            refused=lambda: self._refused_now,
            on_status_refused=lambda source, rc: self._threadsafe(self._status_refused, source, rc))
        self.publisher.start()
        tasks = [asyncio.create_task(self._poll_loop(d, i), name=f"poll-{d.source_id}")
                 for i, d in enumerate(self.devices.values())]
        tasks.append(asyncio.create_task(self._sender(), name="sender"))
        if self._ready is not None:
            self._ready.set()
        try:
            await self._stop.wait()
        finally:
            for task in tasks[:-1]:  # polling stops first
                task.cancel()
            await asyncio.gather(*tasks[:-1], return_exceptions=True)
            deadline = self.loop.time() + FLUSH_ON_STOP_S  # then a short grace to send what is pending
            while self.online and self.buffer.pending_count() and self.loop.time() < deadline:
                await asyncio.sleep(0.05)
            tasks[-1].cancel()
            await asyncio.gather(tasks[-1], return_exceptions=True)
            await self.loop.run_in_executor(None, self.publisher.stop)
            for driver in self.drivers.values():
                with contextlib.suppress(Exception):
                    await driver.close()
            self.buffer.close()
            log.info("stopped")

    def stop(self) -> None:
        """Graceful stop; callable from any thread (and from signal handlers)."""
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)

    def reload(self) -> None:
        """SIGHUP: reconnect at once with the password file and certificates read again, and try the sources
        the broker refused again now (after the platform's ACL was fixed). Callable from any thread."""
        log.info("reload: reconnecting with the credentials and certificates read again")
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self._retry_at.clear)
        if self.publisher is not None:
            self.publisher.reconnect()

    def _threadsafe(self, fn, *args) -> None:
        loop = self.loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(fn, *args)

    @property
    def online(self) -> bool:
        return self._online.is_set()

    # connection state ----------------------------------------------------------------------------------------
    def _set_online(self) -> None:
        self._online.set()
        self._wake_sender.set()
        self.buffer.set_state("connection", json.dumps({"online": True, "since": self.clock.now_ms()}))

    def _set_offline(self) -> None:
        self._online.clear()
        for fut in self._inflight.values():
            if not fut.done():
                fut.set_result(None)
        self._inflight.clear()
        n = self.buffer.mark_pending_backfill()
        self.buffer.set_state("connection", json.dumps({"online": False, "since": self.clock.now_ms()}))
        log.warning("offline: buffering (%d pending readings marked backfill)", n)

    def _puback(self, mid: int, reason_code: int = 0) -> None:
        fut = self._inflight.pop(mid, None)
        if fut is not None and not fut.done():
            fut.set_result(reason_code)

    def _online_payload(self, source: str) -> dict:
        last = self._last_acked.get(source)
        return {"state": "online", "lastAcked": format_ts(last, self.tz) if last is not None else None}

    # polling -------------------------------------------------------------------------------------------------
    def _first_due(self, source: str, index: int) -> int:
        interval = self.intervals[source] * 1000
        now = self.clock.now_ms()
        return -(-now // interval) * interval + index * STAGGER_MS

    async def _sleep_until_due(self, source: str) -> None:
        wake = self._wake[source]
        while not self._poll_now[source]:
            remaining = self._due[source] - self.clock.now_ms()
            if remaining <= 0:
                return
            waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(self.clock.wait(remaining))]
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waiters:
                    w.cancel()
            wake.clear()

    async def _poll_loop(self, device: Device, index: int) -> None:
        source = device.source_id
        self._due[source] = self._first_due(source, index)
        while True:
            await self._sleep_until_due(source)
            if self._poll_now[source]:
                self._poll_now[source] = False
                ts = self.clock.now_ms()
            else:
                ts = self._due[source]
                interval = self.intervals[source] * 1000
                nxt = ts + interval
                now = self.clock.now_ms()
                if nxt <= now:  # fell behind by a whole interval: skip, do not burst
                    nxt = -(-now // interval) * interval + index * STAGGER_MS
                    if nxt <= now:
                        nxt += interval
                self._due[source] = nxt
            self._last_poll[source] = ts
            await self.poll(device, ts)

    async def poll(self, device: Device, ts_ms: int) -> int:
        """Read one device, range-check, store; returns the number of readings accepted into the buffer."""
        try:
            return await self._poll(device, ts_ms)
        finally:
            self.stats["polls"] += 1  # counted once the readings are in the buffer

    async def _poll(self, device: Device, ts_ms: int) -> int:
        source = device.source_id
        health = self.health.setdefault(source, DeviceHealth())
        started = self.loop.time()
        try:
            values = await asyncio.wait_for(self.drivers[source].read(), device.timeout_s + 5)
        except Exception as exc:  # noqa: BLE001 - a failing device must not stop the agent
            self.stats["read_errors"] += 1
            code, message = error_of(exc, device)
            health.failed(code, message, ts_ms)
            self._health_changed(source)
            log.warning("poll %s failed (%d in a row, %s): %s", source, health.failures, health.last_error, message)
            return 0
        readings = []
        backfill = not self.online
        flagged = dropped = 0
        for point in device.points:
            value = values.get(point.data_code)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                self.stats["dropped"] += 1
                dropped += 1
                log.warning("%s %s: no valid value (%r), dropped", source, point.data_code, value)
                continue
            status = "N"
            if (point.min is not None and value < point.min) or (point.max is not None and value > point.max):
                status = "T"
                self.stats["out_of_range"] += 1
                flagged += 1
                log.info("%s %s: %s outside [%s, %s], flagged T", source, point.data_code, value,
                         point.min, point.max)
            readings.append(Reading(source, point.data_code, ts_ms, value, point.unit, status, backfill))
        new = self.buffer.put(readings)
        self.stats["accepted"] += new
        health.ok(ts_ms)
        self._health_changed(source)
        self._wake_sender.set()
        log.info("poll %s at %s: %d readings buffered (%d over limit, %d dropped) in %.2f s", source,
                 format_ts(ts_ms, self.tz), new, flagged, dropped, self.loop.time() - started)
        return len(readings)

    def _health_changed(self, source: str) -> None:
        self.buffer.set_state(f"health:{source}", self.health[source].dumps())
        self._status_dirty = True
        self._wake_sender.set()

    def _snapshot(self) -> dict:
        """The gateway's status payload; built on the loop, read by the publisher thread when it connects."""
        now = self.clock.now_ms() if self.clock is not None else None
        self._gateway_snapshot = {
            "state": "online", "at": iso(now, self.tz), "pending": self.buffer.pending_count(),
            "devices": {s: self.health.get(s, DeviceHealth()).report(self.tz, self._last_acked.get(s))
                        for s in self.devices},
            "refused": {s: {"reasonCode": r["reasonCode"], "reason": r["reason"], "since": iso(r["since"], self.tz),
                            "pending": self.buffer.pending_count(s)} for s, r in self.refused.items()},
        }
        return self._gateway_snapshot

    def _publish_status(self) -> None:
        if not self._status_dirty or self.loop.time() - self._status_sent_at < self.status_min_gap_s:
            return
        payload = json.dumps(self._snapshot(), ensure_ascii=False)
        if self.publisher.publish(self.publisher.gateway_status, payload, retain=True) is not None:
            self._status_dirty, self._status_sent_at = False, self.loop.time()

    # refused publishes -----------------------------------------------------------------------------------------
    def _refuse(self, source: str, reason_code: int, rows: int, what: str = "") -> None:
        """The broker refused a publish for ``source`` (its ACL): keep its rows, hold it back, alarm."""
        now = self.loop.time()
        self._retry_at[source] = now + self.refused_retry_s
        self.stats["refused"] += rows
        reason = reason_text(reason_code)
        if source not in self.refused or self.refused[source]["reasonCode"] != reason_code:
            self.refused[source] = {"reasonCode": reason_code, "reason": reason, "since": self.clock.now_ms()}
            self._refused_now = frozenset(self.refused)
            self.buffer.set_state(f"refused:{source}", json.dumps(self.refused[source]))
            self.buffer.add_alarm("publish_refused", rows, json.dumps(
                {"sourceId": source, "reasonCode": reason_code, "reason": reason}))
            self._status_dirty = True
        log.error("the broker refused %s of %s (PUBACK reason code %d, %s): %d readings kept in the buffer, "
                  "retried in %.0f s. The broker's ACL must let user %s publish for %s: register the source behind "
                  "this gateway on the platform, regenerate the ACL (manage.py mosquitto_acl) and reload Mosquitto",
                  what or f"{rows} readings", source, reason_code, reason, self.buffer.pending_count(source),
                  self.refused_retry_s, self.config.platform.username or self.config.platform.client_id, source)

    def _accepted_again(self, source: str) -> None:
        if self.refused.pop(source, None) is not None:
            self._refused_now = frozenset(self.refused)
            self._retry_at.pop(source, None)
            self.buffer.delete_state(f"refused:{source}")
            self._status_dirty = True
            log.info("the broker accepts %s again", source)
            # its status was held back while refused (see Publisher.refused)
            self.publisher.publish(topic(self.park, source, "status"), json.dumps(self._online_payload(source)),
                                   retain=True)

    def _status_refused(self, source: str, reason_code: int) -> None:
        """The broker refused the source's status on connect: the same ACL refuses its data."""
        if source in self.devices:
            self._refuse(source, reason_code, 0, "the status")

    def _held(self) -> set[str]:
        now = self.loop.time()
        return {s for s in self.refused if self._retry_at.get(s, 0.0) > now}

    # sending -------------------------------------------------------------------------------------------------
    def record(self, r: Reading) -> dict:
        return {"sourceId": r.source_id, "dataCode": r.data_code, "timestamp": format_ts(r.ts_ms, self.tz),
                "value": r.value, "unit": r.unit, "status": r.status, "backfill": r.backfill}

    async def _sender(self) -> None:
        while True:
            await self._online.wait()
            self._publish_alarms()
            self._publish_status()
            rows = self.buffer.next_batch(self.config.platform.batch_size, exclude=self._held())
            if not rows:
                self._wake_sender.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake_sender.wait(), 1.0)
                continue
            groups: list[list[Reading]] = []
            for row in rows:
                if groups and groups[-1][0].source_id == row.source_id:
                    groups[-1].append(row)
                else:
                    groups.append([row])
            sent = []
            for group in groups:
                payload = json.dumps([self.record(r) for r in group], ensure_ascii=False)
                mid = self.publisher.publish(topic(self.park, group[0].source_id, "data"), payload)
                if mid is None:
                    break
                fut = self.loop.create_future()
                self._inflight[mid] = fut
                sent.append((fut, group))
            if sent:
                await asyncio.wait([f for f, _ in sent], timeout=PUBACK_TIMEOUT_S)
            acked, refused = [], set()
            for fut, group in sent:
                source = group[0].source_id
                code = fut.result() if fut.done() else None
                if code is not None and code >= 0x80 or source in refused:
                    if source not in refused:  # not delivered: kept pending, the source held back
                        refused.add(source)
                        self._refuse(source, code, self.buffer.pending_count(source))
                    continue
                if code is None:
                    break  # keep time order: the rest goes again
                acked.extend(group)
                self._accepted_again(source)
            for mid in [m for m, f in self._inflight.items() if any(f is s for s, _ in sent)]:
                del self._inflight[mid]
            if acked:
                self.buffer.mark_acked([r.id for r in acked])
                self.stats["sent"] += len(acked)
                for r in acked:
                    last = self._last_acked.get(r.source_id)
                    if last is None or r.ts_ms > last:
                        self._last_acked[r.source_id] = r.ts_ms
            if len(acked) < sum(len(g) for g in groups):
                await asyncio.sleep(0.2)

    def _publish_alarms(self) -> None:
        for alarm in self.buffer.unpublished_alarms():
            payload = {"state": "online", "alarm": alarm.kind, "at": format_ts(alarm.ts_ms, self.tz)}
            if alarm.kind == "buffer_evicted":
                payload["evicted"] = alarm.count
            else:
                payload["readings"] = alarm.count
            if alarm.detail:
                payload.update(json.loads(alarm.detail))
            if self.publisher.publish(self.publisher.gateway_status, json.dumps(payload), retain=True) is None:
                return
            self.buffer.mark_alarm_published(alarm.id)
