"""The legacy shared folder (R-7.4.1.2, interfaces.md §7): systems that cannot call the API drop batch files in
``BATCH_FOLDER_ROOT/{parkCode}/{category}/{yyyy}/{MM}/``; ``scan_folder`` (the beat task ``scan-batch-folder``
and ``manage.py scan_batch_folder``) loads each complete file through ``load_file``, into the park of its
folder only, then moves it into ``done/`` or ``failed/`` of its own folder, beside its rejection report.

A file is complete when a marker ``<name>.done`` stands beside it (taken at once), or when it has not been
modified for ``BATCH_FOLDER_SETTLE_SECONDS`` (a writer still copying keeps changing its modification time).
Names starting with ``.`` or ending in ``.tmp``, ``.part`` or ``.partial`` are never taken. A sealed file
(``.enc``) is opened with the park's file key, its associated data being the file's name (there is no upload).
One scan runs at a time (a PostgreSQL advisory lock); a second one returns at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connection

from apps.accounts.access import SystemPrincipal
from apps.accounts.models import Park
from apps.batch.loading import LoadReport, load_file, recover_interrupted_loads, refuse_file
from apps.batch.models import FileLoad
from apps.batch.parsers import FileError, parse_name

log = logging.getLogger(__name__)

SCAN_LOCK = 0x0CB_F01D  # pg advisory lock key of the folder scan
IGNORED_SUFFIXES = (".tmp", ".part", ".partial", ".done", ".rejections.csv", ".rejections.xlsx")
OUTCOME_DIRS = ("done", "failed")


@dataclass
class FolderResult:
    path: str
    moved_to: str
    report: LoadReport


def _complete(path: Path, now: float, settle: int) -> bool:
    if path.with_name(path.name + ".done").exists():
        return True
    try:
        return now - path.stat().st_mtime >= settle
    except OSError:
        return False


def _candidates(root: Path):
    """(park directory name, the file, its path below the park) of every file that may be a batch file."""
    if not root.is_dir():
        return
    for park_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for dirpath, dirnames, filenames in os.walk(park_dir):
            dirnames[:] = sorted(d for d in dirnames if d not in OUTCOME_DIRS and not d.startswith("."))
            for name in sorted(filenames):
                if name.startswith(".") or name.lower().endswith(IGNORED_SUFFIXES):
                    continue
                path = Path(dirpath) / name
                yield park_dir.name, path, path.relative_to(park_dir).parts


def _place_problem(filename: str, parts: tuple[str, ...]) -> FileError | None:
    """E9128 when the file is not at {category}/{yyyy}/{MM}/ of its name (a name that breaks the rule is
    load_file's E9101)."""
    try:
        name = parse_name(filename)
    except FileError:
        return None
    if len(parts) != 4:
        return FileError("E9128", detail=f"{'/'.join(parts)} is not {{category}}/{{yyyy}}/{{MM}}/<file>",
                         detail_zh=f"{'/'.join(parts)} 不是 {{类别}}/{{yyyy}}/{{MM}}/<文件>")
    category, year, month = parts[:3]
    wrong, wrong_zh = [], []
    if category != name.category:
        wrong.append(f"folder {category}, name {name.category}")
        wrong_zh.append(f"目录 {category}，文件名 {name.category}")
    if year != name.year:
        wrong.append(f"folder {year}, period {name.period}")
        wrong_zh.append(f"目录 {year}，时段 {name.period}")
    if not (len(month) == 2 and month.isdigit() and 1 <= int(month) <= 12):
        wrong.append(f"month folder {month}")
        wrong_zh.append(f"月份目录 {month}")
    elif name.month is not None and month != name.month:
        wrong.append(f"folder {year}/{month}, period {name.period}")
        wrong_zh.append(f"目录 {year}/{month}，时段 {name.period}")
    if wrong:
        return FileError("E9128", detail="; ".join(wrong), detail_zh="；".join(wrong_zh))
    return None


def _move(path: Path, outcome: str, report: LoadReport) -> Path:
    target_dir = path.parent / outcome
    target_dir.mkdir(exist_ok=True)
    target = target_dir / path.name
    if target.exists():
        target = target_dir / f"{report.load_id}-{path.name}"
    os.replace(path, target)
    marker = path.with_name(path.name + ".done")
    with contextlib.suppress(OSError):
        marker.unlink()
    for report_path in (report.report_csv, report.report_xlsx):
        if report_path:
            suffix = ".rejections.csv" if report_path.endswith(".csv") else ".rejections.xlsx"
            with contextlib.suppress(OSError):
                shutil.copyfile(report_path, target.with_name(target.name + suffix))
    return target


def scan_folder(root: str | Path | None = None, *, settle_seconds: int | None = None,
                now: float | None = None) -> list[FolderResult]:
    """Load every complete file of the shared folder into its folder's park (R-7.4.1.2); returns what was done.
    A park folder that names no park is left alone (logged): its files have no park to be told about."""
    root = Path(root or settings.BATCH_FOLDER_ROOT)
    settle = settings.BATCH_FOLDER_SETTLE_SECONDS if settle_seconds is None else settle_seconds
    results: list[FolderResult] = []
    with connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s)", [SCAN_LOCK])
        if not cur.fetchone()[0]:
            return results
    try:
        recover_interrupted_loads()
        now = time.time() if now is None else now
        parks: dict[str, Park | None] = {}
        for park_code, path, parts in list(_candidates(root)):
            if park_code not in parks:
                parks[park_code] = Park.objects.filter(code=park_code).first()
                if parks[park_code] is None:
                    log.warning("shared folder %s names no park: its files are left where they are", park_code)
            park = parks[park_code]
            if park is None or not _complete(path, now, settle):
                continue
            actor = SystemPrincipal(f"folder:{park.code}")
            problem = _place_problem(path.name, parts)
            if problem is not None:
                report = refuse_file(path, park=park, actor=actor, filename=path.name, error=problem,
                                     origin=FileLoad.Origin.FOLDER)
            else:
                report = load_file(path, park=park, actor=actor, filename=path.name, upload_id=path.name,
                                   origin=FileLoad.Origin.FOLDER)
            target = _move(path, "done" if report.ok else "failed", report)
            log.info("shared folder: %s → %s (%s)", path, target, report.to_json())
            results.append(FolderResult(str(path), str(target), report))
    finally:
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(%s)", [SCAN_LOCK])
    return results
