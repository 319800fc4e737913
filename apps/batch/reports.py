"""Rejection reports of batch files (R-7.2.1, R-8.4.1): one row per rejected row (row, column, code, message in
Chinese and English), as CSV and XLSX, written with the platform's export writers (apps/core/exports.py:
formula-looking text neutralised). Rejections are spooled to disk while the file loads, so a file with a million
bad rows costs disk, not memory."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

from apps.core.exports import XLSX_MAX_ROWS, write_csv, write_xlsx

COLUMNS = ["row", "column", "code", "message_zh", "message_en"]


class ReportWriter:
    def __init__(self, root: Path, stem: str):
        self.root, self.stem = Path(root), stem
        self.count = 0
        self._spool = None

    def add(self, rejection) -> None:
        if self._spool is None:
            self._spool = tempfile.TemporaryFile(mode="w+", encoding="utf-8")  # noqa: SIM115 - closed in reset
        row = [rejection.row, rejection.column, rejection.code, rejection.message_zh, rejection.message_en]
        self._spool.write(json.dumps(row, ensure_ascii=False) + "\n")
        self.count += 1

    def _rows(self):
        self._spool.seek(0)
        for line in self._spool:
            yield json.loads(line)

    def write(self) -> tuple[str | None, str | None]:
        """The CSV and XLSX reports (None, None when nothing was rejected); XLSX only up to Excel's row limit."""
        if not self.count:
            return None, None
        self.root.mkdir(parents=True, exist_ok=True)
        csv_path = self.root / f"{self.stem}.rejections.csv"
        with open(csv_path, "wb") as fh:
            write_csv(COLUMNS, self._rows(), fh)
        xlsx_path = None
        if self.count <= XLSX_MAX_ROWS:
            xlsx_path = self.root / f"{self.stem}.rejections.xlsx"
            with open(xlsx_path, "wb") as fh:
                write_xlsx(COLUMNS, self._rows(), fh, sheet="rejections")
        return str(csv_path), str(xlsx_path) if xlsx_path else None

    def reset(self) -> None:
        self.discard_spool()
        self.count = 0

    def discard_spool(self) -> None:
        if self._spool is not None:
            with contextlib.suppress(OSError):
                self._spool.close()
            self._spool = None


def remove(paths) -> None:
    for p in paths:
        if p:
            with contextlib.suppress(OSError):
                os.unlink(p)
