"""The portal's corrections (issue #10 item 6): a clerk requests with evidence and cannot approve (no button, a
forged POST refused); an approver approves; the readings browser shows the new value with the raw beside it."""

from __future__ import annotations

import re

from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from apps.accounts.services import set_membership
from apps.corrections import services
from apps.corrections.models import Correction
from apps.ingestion.services import ingest_readings

PDF = b"%PDF-1.4\n%%EOF\n"


def member(name, park, role):
    user = get_user_model().objects.create_user(name, f"{name}@example.invalid")
    set_membership(actor="test", user=user, park=park, role=role)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def csrf(client, url):
    page = client.get(url)
    assert page.status_code == 200, (url, page.status_code)
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1), page


def test_clerk_requests_approver_approves_in_the_portal(park, other_park, meter, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    ingest_readings([{"sourceId": meter.source_id, "timestamp": "2026-11-23 10:00:00", "value": 4.0}],
                    channel="test", actor="test")
    clerk, approver = member("clerk", park, "operator"), member("boss", park, "approver")
    token, page = csrf(clerk, "/corrections/correction/")
    assert 'id="request-correction"' in page.content.decode()
    token, _ = csrf(clerk, "/corrections/correction/request/")
    r = clerk.post("/corrections/correction/request/", {
        "csrfmiddlewaretoken": token, "source": meter.pk, "data_code": "", "start": "2026-11-23 10:00:00",
        "end": "2026-11-23 10:00:00", "kind": "new_value", "amount": "40", "reason": "decimal point slipped",
        "evidence": SimpleUploadedFile("photo.pdf", PDF)})
    assert r.status_code == 302, r.content.decode()[:2000]
    c = Correction.objects.get()
    assert c.evidence.count() == 1
    detail = f"/corrections/correction/{c.pk}/change/"
    token, page = csrf(clerk, detail)
    assert 'id="approve-button"' not in page.content.decode()  # no button for the requester
    forged = clerk.post(f"/corrections/correction/{c.pk}/decide/", {"csrfmiddlewaretoken": token,
                                                                   "decision": "approve"})
    assert forged.status_code == 403
    assert clerk.post(f"/corrections/correction/{c.pk}/decide/", {"decision": "approve"}).status_code == 403  # CSRF
    c.refresh_from_db()
    assert c.state == "requested"

    token, page = csrf(approver, "/corrections/correction/")
    assert 'id="awaiting-approval"' in page.content.decode()
    token, page = csrf(approver, detail)
    assert 'id="approve-button"' in page.content.decode()
    link = re.search(r'href="(/corrections/correction/\d+/evidence/\d+/)"', page.content.decode()).group(1)
    download = approver.get(link)
    assert download.status_code == 200 and b"".join(download.streaming_content) == PDF
    assert download["Content-Disposition"].startswith("attachment")
    stranger = member("stranger", other_park, "approver")
    assert stranger.get(link).status_code == 404  # another park's evidence reads like none
    r = approver.post(f"/corrections/correction/{c.pk}/decide/", {"csrfmiddlewaretoken": token,
                                                                  "decision": "approve", "comment": "ok"})
    assert r.status_code == 302
    services.apply_correction(c.pk)  # the worker's task, once the approval committed
    page = approver.get("/ingestion/reading/").content.decode()
    assert re.search(r"40\.0 <span class=\"corrected\"[^>]*>\([^)]* 4\.0\)", page), page[-3000:]
    assert "40.0" in approver.get("/ingestion/reading/?flag=corrected").content.decode()
    assert 'class="corrected"' not in approver.get("/ingestion/reading/?flag=backfill").content.decode()
