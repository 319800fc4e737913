"""The file-name rule of interfaces.md §7 (R-8.2.1.2):
``{parkCode}_{category}_{period}_{yyyyMMddHHmmss}_{seq}.{csv|xml|xlsx}[.gz|.zip][.enc]``. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from .common import FileError

CATEGORIES = ("CS", "CK", "CO", "MIX")
FORMATS = ("csv", "xml", "xlsx")
# The park code may itself hold "_" (accounts.Park allows [A-Za-z0-9_-]): the four fixed parts are matched from
# the right, the rest is the park's.
NAME_RE = re.compile(
    r"^(?P<park>[A-Za-z0-9_-]{2,32})_(?P<category>[A-Z]{2,3})_(?P<period>[0-9Q]{4,8})_(?P<stamp>[0-9]{14})_"
    r"(?P<seq>[0-9]{1,6})\.(?P<format>[A-Za-z]{3,4})(?:\.(?P<compression>gz|zip))?(?P<sealed>\.enc)?$",
    re.IGNORECASE)
PERIOD_RE = re.compile(r"^(?:(?P<y>\d{4})(?:(?P<m>\d{2})(?P<d>\d{2})?|Q(?P<q>[1-4]))?)$")


@dataclass(frozen=True)
class FileName:
    name: str
    park: str
    category: str
    period: str
    created: datetime
    seq: int
    format: str  # csv, xml or xlsx
    compression: str | None  # gz, zip or None
    sealed: bool

    @property
    def year(self) -> str:
        return self.period[:4]

    @property
    def month(self) -> str | None:
        return self.period[4:6] if len(self.period) >= 6 and "Q" not in self.period else None


def _bad(name: str, en: str, zh: str) -> FileError:
    return FileError("E9101", name=name[:120], detail=en, detail_zh=zh)


def parse_name(name: str) -> FileName:
    """Split a batch file's name into its parts, each checked (E9101 names what is wrong)."""
    if not isinstance(name, str) or "/" in name or "\\" in name or "\x00" in name:
        raise _bad(str(name)[:120].replace("\x00", "\\0"), "a bare file name is expected",
                   "应为不含路径的文件名")
    m = NAME_RE.match(name)
    if m is None:
        raise _bad(name, "its parts cannot be told apart", "无法分辨各组成部分")
    category = m.group("category")
    if category not in CATEGORIES:
        raise _bad(name, f"the category {category} is not CS, CK, CO or MIX", f"类别 {category} 不是 CS、CK、CO 或 MIX")
    period = m.group("period")
    p = PERIOD_RE.match(period)
    ok = p is not None
    if ok:
        try:
            if p.group("d"):
                datetime.strptime(period, "%Y%m%d")
            elif p.group("m"):
                ok = 1 <= int(p.group("m")) <= 12
        except ValueError:
            ok = False
    if not ok:
        raise _bad(name, f"the period {period} is not yyyyMMdd, yyyyMM, yyyyQn or yyyy",
                   f"期间 {period} 不是 yyyyMMdd、yyyyMM、yyyyQn 或 yyyy")
    try:
        created = datetime.strptime(m.group("stamp"), "%Y%m%d%H%M%S")
    except ValueError:
        raise _bad(name, f"{m.group('stamp')} is not a time yyyyMMddHHmmss",
                   f"{m.group('stamp')} 不是 yyyyMMddHHmmss 格式的时间") from None
    fmt = m.group("format").lower()
    if fmt not in FORMATS:
        raise _bad(name, f"the extension .{fmt} is not .csv, .xml or .xlsx", f"扩展名 .{fmt} 不是 .csv、.xml 或 .xlsx")
    compression = (m.group("compression") or "").lower() or None
    return FileName(name=name, park=m.group("park"), category=category, period=period, created=created,
                    seq=int(m.group("seq")), format=fmt, compression=compression, sealed=bool(m.group("sealed")))
