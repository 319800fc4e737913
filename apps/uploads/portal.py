"""The upload page of the portal (issue #11 item 2; R-7.2.2, R-8.4.2.2): drop batch files, watch each one go up
(tus 1.0.0 through the vendored tus-js-client, pausable, resumed after a dropped connection) and then load, with
the counts and the rejection report; below, the park's recent uploads and file loads.

The page itself writes nothing: the browser talks to /api/v1/uploads/ (apps/uploads/api.py), which checks every
right again. Here the seam decides which parks the page offers (PUSH, like the API) and what the lists show."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from apps.accounts import access
from apps.accounts.access import Action
from apps.batch import selectors as batch_selectors
from apps.batch.parsers.codes import TEXTS
from apps.uploads import errors, selectors
from apps.uploads.models import Upload

RECENT = 20
DEFAULT_CHUNK = 5 * 1024 * 1024


def _texts(lang: int) -> dict:
    """What the page's script says, in the page's language (the E-codes' texts are the server's own)."""
    return {
        "E9101": TEXTS["E9101"][lang], "E9102": TEXTS["E9102"][lang],
        "E9003": errors.E9003.zh if lang == 0 else errors.E9003.en,
        "md5": _("computing MD5 … {pct} %"), "waiting": _("waiting"), "sending": _("sending"),
        "paused": _("paused"), "retrying": _("connection lost: resuming …"),
        "received": _("received, queued for loading"),
        "loading": _("loading: {rows} rows so far"), "loaded": _("loaded"), "failed": _("refused"),
        "expired": _("expired"), "refused": _("refused before sending"), "error": _("upload failed"),
        "counts": _("{rows} rows: {accepted} accepted, {duplicates} duplicates, {rejected} rejected"),
        "reportCsv": _("rejection report (CSV)"), "reportXlsx": _("rejection report (XLSX)"),
        "pause": _("Pause"), "resume": _("Resume"),
    }


def may_upload(user) -> bool:
    """Whether the user may push files into some park (the menu link and the page)."""
    ids = access.park_ids(user, Action.PUSH)
    return ids is None or bool(ids)


def upload_page_view(request):
    """The upload page: the parks where the user may push files, the drop zone, the recent uploads and loads."""
    allowed = access.parks(request.user, Action.PUSH).order_by("code")
    parks = list(allowed.only("pk", "code", "name_zh", "name_en"))
    if not parks:
        raise PermissionDenied
    shown = access.portal_park_ids(request, Action.PUSH)
    ids = [p.pk for p in parks if shown is None or p.pk in shown] or [p.pk for p in parks]
    current = next(p for p in parks if p.pk == ids[0])
    uploads = list(selectors.uploads(request.user).filter(park_id__in=ids)
                   .exclude(concat=Upload.Concat.PARTIAL).order_by("-created_at")[:RECENT])
    loads = list(batch_selectors.file_loads(request.user, ids)[:RECENT])
    for load in loads:
        load.duration_s = f"{load.duration_ms / 1000:.1f}"
    lang = 1 if (get_language() or "").startswith("en") else 0
    config = {
        "endpoint": reverse("uploads"), "chunkSize": getattr(settings, "UPLOAD_PAGE_CHUNK_BYTES", DEFAULT_CHUNK),
        "maxBytes": settings.UPLOAD_MAX_BYTES, "pollMs": getattr(settings, "UPLOAD_PAGE_POLL_MS", 1000),
        "lang": "en" if lang else "zh",
    }
    context = {**admin.site.each_context(request), "title": _("Upload batch files"), "parks": parks,
               "current_park": current, "uploads": uploads, "loads": loads, "config": config,
               "texts": _texts(lang), "example": f"{current.code}_CS_202611_20261201083000_001.csv"}
    return TemplateResponse(request, "admin/uploads/page.html", context)
