"""The hand-off from a received upload to the file loader (R-7.2.3, interfaces.md §7): ``load`` moves an upload
from ``received`` through ``loading`` to ``loaded`` or ``failed`` and runs ``apps.batch.loading.load_file`` on its
file, with a progress callback whose counts ``GET /api/v1/uploads/{id}`` shows while the load runs.

One load per upload at a time: a session advisory lock on the upload's id is held for the whole load, so a task
delivered twice (acks_late after a worker died) either waits its turn and finds the upload loaded, or takes it up
again from ``loading`` (the loader is atomic per file: a crash left nothing of it stored)."""

from __future__ import annotations

import hashlib
import logging

from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from apps.uploads import errors
from apps.uploads.models import Upload
from apps.uploads.services import fail

log = logging.getLogger(__name__)

COUNTS = ("rows", "accepted", "duplicates", "rejected")
PROGRESS_TTL = 24 * 3600


def progress_key(upload_id) -> str:
    return f"upload-progress:{upload_id}"


def progress_of(upload: Upload) -> dict | None:
    """The counts the running load reported last (kept in the cache, not the row: the loader's own transaction
    would hide them until it ends)."""
    if upload.state != Upload.State.LOADING:
        return None
    return cache.get(progress_key(upload.pk))


def _loader():
    """``apps.batch.loading.load_file``, or None while that app is not installed."""
    try:
        from apps.batch import loading
    except ModuleNotFoundError as exc:
        if exc.name in ("apps.batch", "apps.batch.loading"):
            return None
        raise
    return loading.load_file


def _lock_key(upload_id) -> int:
    return int.from_bytes(hashlib.blake2b(f"upload-load:{upload_id}".encode(), digest_size=8).digest(), "big",
                          signed=True)


def load(upload_id) -> Upload | None:
    """Load one received upload (the task ``apps.uploads.tasks.load_upload``). Returns the upload as it ended, or
    None when there is no such upload. An upload in any state but ``received`` or ``loading`` is left as it is:
    queued twice, it is loaded once."""
    key = _lock_key(upload_id)
    with connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(%s)", [key])
    try:
        with transaction.atomic():
            upload = Upload.objects.select_for_update(of=("self",)) \
                .select_related("park", "created_by", "created_by_token").filter(pk=upload_id).first()
            if upload is None or upload.state not in (Upload.State.RECEIVED, Upload.State.LOADING):
                return upload
            upload.state = Upload.State.LOADING
            upload.save(update_fields=["state", "updated_at"])
        _run(upload)
        return upload
    finally:
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(%s)", [key])


def principal_of(upload: Upload):
    """Who the load runs for: the person who uploaded, else the API token's principal (its rights as they are now:
    a token withdrawn since loads nothing, E9127), else a process named by the upload's label."""
    if upload.created_by is not None:
        return upload.created_by
    if upload.created_by_token is not None:
        from apps.accounts.authentication import TokenPrincipal

        return TokenPrincipal(upload.created_by_token)
    from apps.accounts.access import SystemPrincipal

    return SystemPrincipal(upload.created_by_label or "upload")


def _run(upload: Upload) -> None:
    loader = _loader()

    def progress(report):
        cache.set(progress_key(upload.pk), {k: int(getattr(report, k, 0) or 0) for k in COUNTS}, PROGRESS_TTL)

    report = None
    if loader is None:
        fail(upload, errors.E9031)
    else:
        try:
            report = loader(upload.path, park=upload.park, actor=principal_of(upload), filename=upload.filename,
                            upload_id=str(upload.pk), progress=progress)
        except Exception:  # the loader answers a bad file with a report; anything raised is a bug, told as one
            log.exception("loading upload %s failed", upload.pk)
            fail(upload, errors.E9032)
    if report is not None:
        for name in COUNTS:
            setattr(upload, name, int(getattr(report, name, 0) or 0))
        upload.report_csv = str(report.report_csv or "")
        upload.report_xlsx = str(report.report_xlsx or "")
        problem = report.file_error
        if problem is not None:  # malformed as a whole: nothing stored (interfaces.md §7)
            upload.state = Upload.State.FAILED
            upload.error_code = problem.code
            upload.error_params = {"message_zh": problem.message_zh, "message_en": problem.message_en}
        else:
            upload.state = Upload.State.LOADED
    upload.loaded_at = timezone.now()
    Upload.objects.filter(pk=upload.pk).update(
        state=upload.state, error_code=upload.error_code, error_params=upload.error_params, loaded_at=upload.loaded_at,
        report_csv=upload.report_csv, report_xlsx=upload.report_xlsx, updated_at=timezone.now(),
        **{name: getattr(upload, name) for name in COUNTS})
    cache.delete(progress_key(upload.pk))
