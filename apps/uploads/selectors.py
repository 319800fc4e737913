"""Reads of uploads, scoped by the access seam: an upload is seen by those who may push in its park (the uploader,
its park's clerks and administrators, the park's integrator and device tokens). Another park's upload reads
exactly like one that does not exist (404, E9011)."""

from __future__ import annotations

import uuid

from apps.accounts import access
from apps.accounts.access import Action
from apps.core.errors import CarbonParkError
from apps.uploads import errors
from apps.uploads.models import Upload


def uploads(actor):
    return access.restrict(Upload.objects.select_related("park"), actor, Action.PUSH)


def get_upload(actor, upload_id: str) -> Upload:
    try:
        key = uuid.UUID(str(upload_id))
    except ValueError:
        raise CarbonParkError(errors.E9011, id=str(upload_id)[:40]) from None
    upload = uploads(actor).filter(pk=key).first()
    if upload is None:
        raise CarbonParkError(errors.E9011, id=str(key))
    return upload
