"""Batch file parsers (interfaces.md §7; R-7.2.1, R-8.2.1.2, R-8.2.2.2): CSV, XML and XLSX, optionally gzip or
zip compressed, optionally sealed in the CPE1 envelope, each read as a stream of records (dicts of §1 fields)
and row errors, with whole-file malformations raised as FileError. Pure Python: no Django (tests/test_layering.py),
so a command-line client can check a file before sending it (R-7.2.2).

    with BatchFile(path, "JSTZ01_CS_202611_20261201083000_001.csv.gz", park_code="JSTZ01") as f:
        for item in f.items():       # ParsedRecord(row, record) or RowError(row, column, code, params)
            ...
        # f.meta: the metadata; the records count is checked when items() is exhausted (E9107)
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator

from .common import FIELDS, FileError, Limits, Meta, ParsedRecord, RowError, check_meta
from .csvfile import read_csv
from .names import FileName, parse_name
from .xlsxfile import read_xlsx
from .xmlfile import read_xml

__all__ = ["FIELDS", "BatchFile", "FileError", "FileName", "Limits", "Meta", "ParsedRecord", "RowError",
           "parse_name"]


class BatchFile:
    """One batch file, unwrapped (decrypted, decompressed) into temporary files on entry and cleaned on exit.

    ``park_code``: the park the file is loaded into; the park in its name (and metadata) must be it (E9102).
    ``key_for``: key id → 32 key bytes of this park's file key ring, or None (sealed files only).
    ``upload_id``: the associated data a sealed file was encrypted for (interfaces.md §5)."""

    def __init__(self, path: str, filename: str, *, park_code: str | None, limits: Limits | None = None,
                 key_for: Callable[[str], bytes | None] | None = None, upload_id: str = "",
                 workdir: str | None = None):
        self.path = os.fspath(path)
        self.name: FileName = parse_name(filename)
        if park_code is not None and self.name.park != park_code:
            raise FileError("E9102", found=self.name.park, expected=park_code, where="file name",
                            where_zh="文件名")
        self.park_code = park_code
        self.limits = limits or Limits()
        self.key_for = key_for
        self.upload_id = upload_id
        self.workdir = workdir
        self.meta = Meta()
        self.plain: str | None = None
        self._made: list[str] = []
        self._tmp: tempfile.TemporaryDirectory | None = None

    def __enter__(self) -> BatchFile:
        if self.workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="cp-batch-")
            self.workdir = self._tmp.name
        try:
            self.plain, self._made = _unwrap(self)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        for p in self._made:
            with contextlib.suppress(OSError):
                os.unlink(p)
        self._made = []
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    @property
    def sealed(self) -> bool:
        return self.name.sealed

    def items(self) -> Iterator[ParsedRecord | RowError]:
        """Records and row errors in file order. The metadata are checked before the first record (park,
        period, a readable records count) and the count after the last (E9107)."""
        assert self.plain is not None, "use BatchFile as a context manager"
        readers = {"csv": read_csv, "xml": read_xml}
        if self.name.format == "xlsx":
            it = read_xlsx(self.plain, self.meta, self.limits)
        else:
            it = readers[self.name.format](self.plain, self.meta)
        checked = False
        for item in it:
            if not checked:
                check_meta(self.meta, park_code=self.park_code, period=self.name.period)
                checked = True
            yield item
        if not checked:
            check_meta(self.meta, park_code=self.park_code, period=self.name.period)
        self.meta.check_count()


def _unwrap(f: BatchFile):
    from .containers import unwrap

    return unwrap(f.path, f.name, limits=f.limits, workdir=f.workdir, key_for=f.key_for, upload_id=f.upload_id)
