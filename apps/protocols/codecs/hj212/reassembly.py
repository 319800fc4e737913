"""Split packets (HJ 212-2017 6.3.2 PNUM/PNO) joined back together."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace

from .constants import E_SPLIT, FLAG_D
from .segment import Hj212Error, Packet

# --- split packets (6.3.2 PNUM/PNO) ---------------------------------------------------------------

class Reassembler:
    """Joins split packets (Flag bit D, PNUM/PNO, HJ 212-2017 6.3.2) keyed by MN + QN + CN (+ PNUM),
    in any PNO order. ``add`` returns the whole packet (the parts' data areas joined by ``;``, PNUM/PNO
    and the D bit cleared) once every part arrived, None while parts are missing, the packet itself
    when it is not split. At most ``max_pending`` parts wait; beyond that the oldest incomplete packet
    is dropped, counted in ``dropped`` and reported once by ``take_dropped`` (E7007)."""

    def __init__(self, max_pending: int = 256):
        self.max_pending = max_pending
        self._parts: OrderedDict[tuple, dict[int, Packet]] = OrderedDict()
        self.dropped = 0
        self._dropped_errors: list[Hj212Error] = []

    def take_dropped(self) -> list[Hj212Error]:
        """E7007 for each incomplete packet dropped since the last call (with one of its parts)."""
        out, self._dropped_errors = self._dropped_errors, []
        return out

    @property
    def pending(self) -> int:
        return sum(len(p) for p in self._parts.values())

    def add(self, packet: Packet) -> Packet | None:
        if not packet.split or packet.pnum is None or packet.pno is None:
            return packet
        if packet.pnum == 1:
            return _joined([packet])
        key = (packet.mn, packet.qn, packet.cn, packet.pnum)
        parts = self._parts.setdefault(key, {})
        parts[packet.pno] = packet
        if len(parts) == packet.pnum:
            del self._parts[key]
            return _joined([parts[i] for i in sorted(parts)])
        while self.pending > self.max_pending and self._parts:
            (mn, qn, cn, pnum), parts = self._parts.popitem(last=False)
            self.dropped += 1
            self._dropped_errors.append(Hj212Error(
                E_SPLIT, f"MN={mn} QN={qn} CN={cn}: {len(parts)} of {pnum} parts (PNO "
                         f"{','.join(str(n) for n in sorted(parts))})", next(iter(parts.values()))))
        return None


def _joined(parts: list[Packet]) -> Packet:
    first = parts[0]
    seen_time = None
    groups: list[str] = []
    for p in parts:
        for g in p.cp.split(";"):
            if not g:
                continue
            if g.startswith("DataTime=") and "," not in g:
                if g == seen_time:
                    continue
                seen_time = g
            groups.append(g)
    flag = None if first.flag is None else first.flag & ~FLAG_D
    return replace(first, cp=";".join(groups), flag=flag, pnum=None, pno=None)
