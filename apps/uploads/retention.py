"""Retention of uploaded files (``UPLOAD_RETENTION_DAYS``): what was stored from a file is in the readings, its
load log and reports; the file itself is kept only as evidence of what was received, for as long as configured."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core.services import record_change
from apps.uploads.models import Upload
from apps.uploads.services import _remove


def remove_old_files(now=None) -> int:
    """Retention of the files themselves (``UPLOAD_RETENTION_DAYS``; 0, the default, keeps them): the bytes of
    uploads loaded or failed longer ago than that are removed, the row (who, file, MD5, counts, reports) stays and
    says when (``bytes_removed_at``), and each removal is audited. Run by the beat task with the expiry. What was
    stored from a file is in the readings; the file is kept only as evidence of what was received (R-8.4.1)."""
    days = float(getattr(settings, "UPLOAD_RETENTION_DAYS", 0) or 0)
    if days <= 0:
        return 0
    now = now or timezone.now()
    old = (Upload.objects.filter(state__in=(Upload.State.LOADED, Upload.State.FAILED),
                                 loaded_at__lt=now - timedelta(days=days), bytes_removed_at__isnull=True)
           .select_related("park").order_by("loaded_at"))
    count = 0
    for upload_id in old.values_list("pk", flat=True)[:10_000]:
        with transaction.atomic():
            upload = old.select_for_update(skip_locked=True, of=("self",)).filter(pk=upload_id).first()
            if upload is None:
                continue
            upload.bytes_removed_at = now
            upload.save(update_fields=["bytes_removed_at", "updated_at"])
            record_change(actor="upload-retention", action="upload.remove_file", object_type="uploads.upload",
                          object_id=str(upload.pk), after={"file": upload.filename, "md5": upload.received_md5,
                                                           "size": upload.offset, "retention_days": days},
                          park_code=upload.park.code)
            path = upload.path
            transaction.on_commit(lambda path=path: _remove(path))
            count += 1
    return count
