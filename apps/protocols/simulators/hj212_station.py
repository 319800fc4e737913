"""A simulated HJ 212-2017 monitoring station (field unit, TCP client, HJ 212-2017 6.1).

``Hj212Station`` connects to a listener and uploads real-time (CN 2011) and minute (CN 2051) data with
Flag A (answer requested), optionally as split packets (Flag D, PNUM/PNO) and optionally interleaved
with malformed input (bad CRC, garbage bytes), and checks the 9014 answers (same QN, ST=91). Used by
tests and by ``manage.py simulate hj212``::

    async with Hj212Station("127.0.0.1", 9212, mn="010000A8900016F000169DC0") as st:
        await st.send_realtime({"w01018": 38.2, "w00000": 4.1})
        stats = await st.run(interval=60, count=10)
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timedelta

from apps.protocols.codecs import hj212

DEFAULT_REALTIME = {"w00000": 4.2, "w01018": 38.0}  # flow L/s, COD mg/L
DEFAULT_MINUTE = {"w00000": (2.1, 4.2, 6.0, 25.2), "w01018": (36.0, 38.0, 41.0, None)}  # min, avg, max, cou


class Hj212Station:
    """One station: ``mn`` (device id), ``st`` (system code, 32 wastewater), ``pw``, ``flag`` (5 =
    2017 with A; 9 = 2025 with A). ``answer_timeout``: how long to wait for each 9014."""

    def __init__(self, host: str, port: int, mn: str, *, st: str = "32", pw: str = "123456", flag: int = 5,
                 answer_timeout: float = 5.0, seed: int | None = None):
        self.host, self.port, self.mn, self.st, self.pw, self.flag = host, port, mn, st, pw, flag
        self.answer_timeout = answer_timeout
        self.rng = random.Random(seed)
        self._level = dict(DEFAULT_REALTIME)  # where wander() has taken each factor
        self.stats: Counter[str] = Counter()  # sent, acked, bad_answers, missing_answers, malformed_sent
        self.answers: list[hj212.Packet] = []
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._splitter = hj212.FrameSplitter()
        self._queue: list[hj212.Packet] = []
        self._seq = itertools.count()

    async def connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await self._writer.wait_closed()
            self._writer = None

    async def __aenter__(self):
        await self.connect()
        return self

    async def __aexit__(self, *exc):
        await self.close()

    # --- packets ----------------------------------------------------------------------------------
    def qn(self, now: datetime | None = None) -> str:
        now = now or datetime.now()
        ms = (now.microsecond // 1000 + next(self._seq)) % 1000
        return now.strftime("%Y%m%d%H%M%S") + f"{ms:03d}"

    def realtime_packet(self, values: Mapping[str, float] | None = None, at: datetime | None = None,
                        flags: Mapping[str, str] | None = None) -> hj212.Packet:
        """CN 2011 with ``code-Rtd`` and ``code-Flag`` per factor (HJ 212-2017 Appendix C)."""
        at = at or datetime.now().replace(microsecond=0)
        flags = flags or {}
        groups = [[("DataTime", at.strftime("%Y%m%d%H%M%S"))]]
        for code, value in (values or DEFAULT_REALTIME).items():
            groups.append([(f"{code}-Rtd", _fmt(value)), (f"{code}-Flag", flags.get(code, "N"))])
        return hj212.Packet(cn=hj212.CN_REALTIME, mn=self.mn, cp=hj212.format_cp(groups), st=self.st,
                            pw=self.pw, qn=self.qn(), flag=self.flag)

    def minute_packet(self, values: Mapping[str, tuple] | None = None, at: datetime | None = None,
                      flags: Mapping[str, str] | None = None) -> hj212.Packet:
        """CN 2051 with ``-Min/-Avg/-Max`` (and ``-Cou`` when given) per factor; ``at`` is the start
        of the period (Table 4)."""
        at = at or (datetime.now().replace(second=0, microsecond=0) - timedelta(minutes=1))
        flags = flags or {}
        groups = [[("DataTime", at.strftime("%Y%m%d%H%M%S"))]]
        for code, (mn_, avg, mx, cou) in (values or DEFAULT_MINUTE).items():
            group = []
            if cou is not None:
                group.append((f"{code}-Cou", _fmt(cou)))
            group += [(f"{code}-Min", _fmt(mn_)), (f"{code}-Avg", _fmt(avg)), (f"{code}-Max", _fmt(mx)),
                      (f"{code}-Flag", flags.get(code, "N"))]
            groups.append(group)
        return hj212.Packet(cn=hj212.CN_MINUTE, mn=self.mn, cp=hj212.format_cp(groups), st=self.st,
                            pw=self.pw, qn=self.qn(), flag=self.flag)

    def wander(self) -> tuple[dict, dict]:
        """The next round's values around the defaults, as a live station's drift (a flow that never changes and a
        COD stuck at one value are what the frozen-value check looks for: issue #12): a slow random walk
        bounded to ±10 % of each default, the minute's min/avg/max spread around it, flow's total (Cou) from it."""
        level = self._level
        for code, base in DEFAULT_REALTIME.items():
            level[code] = min(base * 1.1, max(base * 0.9, level[code] + self.rng.gauss(0, base * 0.01)))
        realtime = {code: round(v + self.rng.gauss(0, v * 0.005), 2) for code, v in level.items()}
        minute = {}
        for code, v in level.items():
            lo, hi = v * (1 - self.rng.uniform(0.02, 0.08)), v * (1 + self.rng.uniform(0.02, 0.08))
            cou = round(v * 60 / 10, 2) if DEFAULT_MINUTE[code][3] is not None else None  # L/s over a minute, m³
            minute[code] = (round(lo, 2), round(v, 2), round(hi, 2), cou)
        return realtime, minute

    # --- sending ----------------------------------------------------------------------------------
    async def send(self, packet: hj212.Packet, *, split: int | None = None) -> bool:
        """Send a packet (split into parts of at most ``split`` data-area characters when given) and,
        when Flag.A is set, wait for a matching 9014 per part. True when every expected answer came."""
        parts = hj212.split_packet(packet, split) if split else [packet]
        ok = True
        for part in parts:
            self._writer.write(hj212.build_packet(part))
            await self._writer.drain()
            self.stats["sent"] += 1
            if part.ack_requested:
                ok = await self._await_answer(part) and ok
        return ok

    async def send_realtime(self, values=None, **kw) -> bool:
        split = kw.pop("split", None)
        return await self.send(self.realtime_packet(values, **kw), split=split)

    async def send_minute(self, values=None, **kw) -> bool:
        split = kw.pop("split", None)
        return await self.send(self.minute_packet(values, **kw), split=split)

    async def send_raw(self, data: bytes) -> None:
        """Bytes as they are (malformed input for tests); no answer is awaited."""
        self._writer.write(data)
        await self._writer.drain()
        self.stats["malformed_sent"] += 1

    async def send_bad_crc(self, packet: hj212.Packet | None = None) -> None:
        frame = bytearray(hj212.build_packet(packet or self.realtime_packet()))
        crc_at = len(frame) - 6
        good = frame[crc_at:crc_at + 4].decode()
        frame[crc_at:crc_at + 4] = f"{(int(good, 16) ^ 0x0101):04X}".encode()
        await self.send_raw(bytes(frame))

    async def send_garbage(self, n: int = 64) -> None:
        await self.send_raw(bytes(self.rng.choice(b"abcXYZ0123#&;=\r\n\x00\xff") for _ in range(n)))

    async def _await_answer(self, sent: hj212.Packet) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.answer_timeout
        while True:
            for i, ans in enumerate(self._queue):
                if ans.qn == sent.qn:
                    del self._queue[i]
                    good = ans.cn == hj212.CN_DATA_ANSWER and ans.st == hj212.ST_INTERACTION and ans.mn == sent.mn
                    self.stats["acked" if good else "bad_answers"] += 1
                    return good
            left = deadline - loop.time()
            if left <= 0:
                self.stats["missing_answers"] += 1
                return False
            try:
                data = await asyncio.wait_for(self._reader.read(4096), left)
            except TimeoutError:
                continue
            if not data:
                self.stats["missing_answers"] += 1
                return False
            for item in self._splitter.feed(data):
                if isinstance(item, hj212.Hj212Error):
                    self.stats["bad_answers"] += 1
                    continue
                parsed = hj212.parse_packet(item)
                if isinstance(parsed, hj212.Hj212Error):
                    self.stats["bad_answers"] += 1
                    continue
                self.answers.append(parsed)
                self._queue.append(parsed)

    async def run(self, *, interval: float = 60.0, count: int | None = None, split: int | None = None,
                  malformed: bool = False) -> Counter:
        """Every ``interval`` seconds one 2011 and one 2051 upload (``count`` rounds, or until cancelled);
        with ``malformed`` each round also sends a bad-CRC packet and garbage bytes."""
        rounds = itertools.count() if count is None else range(count)
        for i in rounds:
            realtime, minute = self.wander()
            await self.send_realtime(realtime, split=split)
            await self.send_minute(minute, split=split)
            if malformed:
                await self.send_bad_crc()
                await self.send_garbage()
            if count is None or i + 1 < count:
                await asyncio.sleep(interval)
        return self.stats


def _fmt(value) -> str:
    return format(value, "g") if isinstance(value, float) else str(value)


async def simulate(host: str, port: int, mn: str, *, interval: float = 60.0, count: int | None = None,
                   split: int | None = None, malformed: bool = False, **kw) -> Counter:
    """Connect, run, close: the entry point for ``manage.py simulate hj212``."""
    async with Hj212Station(host, port, mn, **kw) as station:
        return await station.run(interval=interval, count=count, split=split, malformed=malformed)
