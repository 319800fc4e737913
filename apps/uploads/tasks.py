"""Celery tasks of uploads: thin, each calls one service. ``load_upload`` is queued on commit by
``apps.uploads.services`` when an upload's last byte is in, once per upload."""

from celery import shared_task
from django.db import OperationalError


@shared_task(time_limit=3600, soft_time_limit=3540, autoretry_for=(OperationalError,), retry_backoff=True,
             max_retries=5)
def load_upload(upload_id: str):
    """Load one received upload: state ``received`` → ``loading`` → ``loaded`` | ``failed`` (R-7.2.3)."""
    from apps.uploads.loading import load

    upload = load(upload_id)
    return upload.state if upload is not None else None


@shared_task(time_limit=600)
def expire_uploads():
    """Abandoned uploads past their Upload-Expires: marked expired, their bytes removed; then the files of uploads
    loaded longer ago than UPLOAD_RETENTION_DAYS, when set."""
    from apps.uploads.retention import remove_old_files
    from apps.uploads.services import expire_uploads as expire

    return {"expired": expire(), "files_removed": remove_old_files()}
