"""The tus 1.0.0 server at /api/v1/uploads/ (interfaces.md §3, §7; R-8.4.2.2) through the API: creation and its
checks before any byte, HEAD, PATCH, checksums, deferred length, concatenation, termination, expiry, the upload's
state as JSON, and hostile headers. Over real connections (live server, tuspy, gunicorn): tests/test_uploads_live.py."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.services import issue_token, set_membership
from apps.uploads import loading, services
from apps.uploads.models import Upload

OCTETS = "application/offset+octet-stream"
NAME = "TP01_CS_202611_20261201083000_001.csv"
TUS = {"HTTP_TUS_RESUMABLE": "1.0.0"}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def meta(**values) -> str:
    return ",".join(f"{k} {b64(v)}" for k, v in values.items())


def create(api, length: int | None = 10, body: bytes = b"", headers=None, **metadata):
    metadata.setdefault("filename", NAME)
    extra = dict(TUS, HTTP_UPLOAD_METADATA=meta(**metadata))
    if length is not None:
        extra["HTTP_UPLOAD_LENGTH"] = str(length)
    extra.update(headers or {})
    return api.generic("POST", "/api/v1/uploads/", body, content_type=OCTETS, **extra)


def patch(api, url, data: bytes, offset: int, content_type=OCTETS, **headers):
    return api.generic("PATCH", url, data, content_type=content_type, HTTP_UPLOAD_OFFSET=str(offset),
                       **{**TUS, **headers})


def head(api, url, **headers):
    return api.generic("HEAD", url, **{**TUS, **headers})


def upload_of(response) -> Upload:
    return Upload.objects.get(pk=response["Location"].rsplit("/", 1)[1])


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def queue(settings, monkeypatch):
    """A Celery queue of this test's own on the real broker: ``queue()`` is how many loads wait in it."""
    import os
    import uuid

    import redis

    from carbonpark.celery import app

    name = f"test-uploads-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    monkeypatch.setitem(app.conf, "task_default_queue", name)
    broker = redis.Redis.from_url(settings.REDIS_URL)
    yield lambda: broker.llen(name)
    broker.delete(name)


@pytest.fixture
def commits(django_capture_on_commit_callbacks, queue):
    """What runs when a request's transaction commits (files removed, loads queued) runs here too."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def code(response) -> str:
    return response.json()["code"]


# --- the protocol ---------------------------------------------------------------------------------------------


def test_options_tells_what_the_server_offers_without_credentials(db, settings):
    r = APIClient().options("/api/v1/uploads/")
    assert r.status_code == 204
    assert r["Tus-Version"] == "1.0.0" and r["Tus-Resumable"] == "1.0.0"
    assert set(r["Tus-Extension"].split(",")) == {"creation", "creation-with-upload", "creation-defer-length",
                                                  "termination", "checksum", "concatenation", "expiration"}
    assert set(r["Tus-Checksum-Algorithm"].split(",")) == {"sha256", "md5", "sha1"}
    assert r["Tus-Max-Size"] == str(settings.UPLOAD_MAX_BYTES)


def test_an_upload_is_created_appended_and_verified_whole(api, park, media):
    data = b"sourceId,dataCode,timestamp,value\n" * 3
    r = create(api, len(data), md5=hashlib.md5(data).hexdigest())
    assert r.status_code == 201, r.content
    url = r["Location"]
    assert url.startswith("/api/v1/uploads/") and r["Tus-Resumable"] == "1.0.0" and r["Upload-Expires"]
    u = upload_of(r)
    assert (u.park, u.kind, u.compression, u.state, u.filename) == (park, "csv", "", "receiving", NAME)
    assert u.path.parent == media / "uploads" and u.path.read_bytes() == b""

    h = head(api, url)
    assert h.status_code == 200 and h["Upload-Offset"] == "0" and h["Upload-Length"] == str(len(data))
    assert h["Cache-Control"] == "no-store"
    assert h["Upload-Metadata"] and "Upload-Expires" in h

    r1 = patch(api, url, data[:40], 0)
    assert r1.status_code == 204, r1.content
    assert r1["Upload-Offset"] == "40"
    assert head(api, url)["Upload-Offset"] == "40"
    r2 = patch(api, url, data[40:], 40)
    assert r2.status_code == 204 and r2["Upload-Offset"] == str(len(data))
    u.refresh_from_db()
    assert u.state == "received" and u.received_md5 == hashlib.md5(data).hexdigest() and u.load_queued_at
    assert u.path.read_bytes() == data
    body = api.get(url).json()
    assert body["state"] == "received" and body["bytesReceived"] == len(data) and body["error"] is None


def test_a_wrong_whole_file_md5_fails_the_upload_and_nothing_is_queued(api, park):
    data = b"a,b\n1,2\n"
    r = create(api, len(data), md5="0" * 32)
    assert patch(api, r["Location"], data, 0).status_code == 204
    u = upload_of(r)
    assert u.state == "failed" and u.error_code == "E9030" and u.load_queued_at is None
    error = api.get(r["Location"], HTTP_ACCEPT_LANGUAGE="en").json()["error"]
    assert error["code"] == "E9030" and "0" * 32 in error["message"] and hashlib.md5(data).hexdigest() in \
        error["message"]


@pytest.mark.parametrize("version", [None, "0.2.2", "1.0.0\x00"])
def test_an_unsupported_protocol_version_is_412(api, park, version):
    extra = {"HTTP_UPLOAD_LENGTH": "10", "HTTP_UPLOAD_METADATA": meta(filename=NAME)}
    if version is not None:
        extra["HTTP_TUS_RESUMABLE"] = version
    r = api.generic("POST", "/api/v1/uploads/", b"", content_type=OCTETS, **extra)
    assert r.status_code == 412 and code(r) == "E9001" and r["Tus-Version"] == "1.0.0"
    assert not Upload.objects.exists()


def test_creation_with_upload_and_a_chunk_checksum(api):
    data = b"x,y\n" * 10
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    r = create(api, 100, body=data, headers={"HTTP_UPLOAD_CHECKSUM": f"sha256 {digest}"})
    assert r.status_code == 201 and r["Upload-Offset"] == str(len(data))
    assert upload_of(r).path.read_bytes() == data


def test_a_bad_chunk_checksum_is_460_and_nothing_of_the_chunk_is_kept(api):
    r = create(api, 20)
    url = r["Location"]
    assert patch(api, url, b"12345", 0).status_code == 204
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    bad = patch(api, url, b"67890", 5, HTTP_UPLOAD_CHECKSUM=f"md5 {wrong}")
    assert bad.status_code == 460 and code(bad) == "E9016"
    assert head(api, url)["Upload-Offset"] == "5" and upload_of(r).path.read_bytes() == b"12345"
    right = base64.b64encode(hashlib.sha1(b"67890").digest()).decode()
    ok = patch(api, url, b"67890", 5, HTTP_UPLOAD_CHECKSUM=f"sha1 {right}")
    assert ok.status_code == 204 and ok["Upload-Offset"] == "10"


@pytest.mark.parametrize("value", ["crc32 AAAA", "sha256 not-base64!", "sha256", "md5 " + b64("short")])
def test_an_invalid_checksum_header_is_400(api, value):
    url = create(api, 10)["Location"]
    r = patch(api, url, b"12345", 0, HTTP_UPLOAD_CHECKSUM=value)
    assert r.status_code == 400 and code(r) == "E9017"
    assert head(api, url)["Upload-Offset"] == "0"


def test_a_chunk_at_the_wrong_offset_is_409(api):
    url = create(api, 10)["Location"]
    assert patch(api, url, b"abc", 0).status_code == 204
    for sent in (0, 2, 4):
        r = patch(api, url, b"def", sent)
        assert r.status_code == 409 and code(r) == "E9013"
    assert head(api, url)["Upload-Offset"] == "3"


@pytest.mark.parametrize("offset", ["-1", "abc", "", "1e3", "٣", "99999999999999999999999"])
def test_negative_or_non_numeric_offsets_are_400(api, offset):
    url = create(api, 10)["Location"]
    r = api.generic("PATCH", url, b"abc", content_type=OCTETS, HTTP_UPLOAD_OFFSET=offset, **TUS)
    assert r.status_code == 400 and code(r) == "E9002"


@pytest.mark.parametrize("ctype", ["application/json", "application/octet-stream", "text/plain"])
def test_a_wrong_content_type_is_415(api, ctype):
    url = create(api, 10)["Location"]
    r = patch(api, url, b"abc", 0, content_type=ctype)
    assert r.status_code == 415 and code(r) == "E9014"


def test_bytes_past_the_declared_length_are_413_and_not_kept(api):
    r = create(api, 4)
    bad = patch(api, r["Location"], b"12345", 0)
    assert bad.status_code == 413 and code(bad) == "E9018"
    assert upload_of(r).offset == 0 and upload_of(r).path.read_bytes() == b""


def test_a_retried_last_patch_changes_nothing_and_queues_nothing_again(api, commits, queue):
    r = create(api, 3)
    url = r["Location"]
    with commits():
        assert patch(api, url, b"abc", 0).status_code == 204
    assert queue() == 1
    queued = upload_of(r).load_queued_at
    with commits():
        again = patch(api, url, b"abc", 0)  # the answer was lost; the client sends the chunk again
        empty = patch(api, url, b"", 3)
    assert again.status_code == 409 and code(again) == "E9013"
    assert empty.status_code == 204 and empty["Upload-Offset"] == "3"
    assert upload_of(r).load_queued_at == queued and queue() == 1


def test_deferred_length(api):
    r = create(api, None, headers={"HTTP_UPLOAD_DEFER_LENGTH": "1"})
    assert r.status_code == 201, r.content
    url = r["Location"]
    h = head(api, url)
    assert h["Upload-Defer-Length"] == "1" and "Upload-Length" not in h
    assert patch(api, url, b"abcd", 0).status_code == 204
    last = patch(api, url, b"ef", 4, HTTP_UPLOAD_LENGTH="6")
    assert last.status_code == 204 and last["Upload-Offset"] == "6"
    u = upload_of(r)
    assert u.length == 6 and u.state == "received"
    assert head(api, url)["Upload-Length"] == "6"


@pytest.mark.parametrize("headers", [{}, {"HTTP_UPLOAD_DEFER_LENGTH": "2"},
                                     {"HTTP_UPLOAD_DEFER_LENGTH": "1", "HTTP_UPLOAD_LENGTH": "5"}])
def test_length_or_deferral_exactly_once(api, headers):
    r = create(api, None, headers=headers)
    assert r.status_code == 400 and code(r) == "E9002"


# --- checks made at creation, before any byte ------------------------------------------------------------------


def test_too_large_is_refused_at_creation(api, settings):
    settings.UPLOAD_MAX_BYTES = 1000
    r = create(api, 1001)
    assert r.status_code == 413 and code(r) == "E9003"
    assert not Upload.objects.exists()


@pytest.mark.parametrize("length", [str(10**30), str(2**63), "1" * 400])
def test_a_huge_upload_length_is_refused(api, length):
    r = api.generic("POST", "/api/v1/uploads/", b"", content_type=OCTETS, HTTP_UPLOAD_LENGTH=length,
                    HTTP_UPLOAD_METADATA=meta(filename=NAME), **TUS)
    assert r.status_code == 400 and code(r) == "E9002"
    assert not Upload.objects.exists()


@pytest.mark.parametrize("value, expected", [
    (f"filename {b64('a' + chr(0) + '.csv')}", "E9004"),  # NUL in a value
    ("filename not*base64", "E9004"),
    (f"filename {base64.b64encode(bytes([0xff, 0xfe])).decode()}", "E9004"),  # not UTF-8
    (f"filename {b64(NAME)},filename {b64(NAME)}", "E9004"),  # a key twice
    ("x" * 5000, "E9004"),
    (f"md5 {b64('abc')}", "E9005"),  # no file name
    (f"filename {b64(NAME)},md5 {b64('xyz')}", "E9010"),
    (f"filename {b64('readings.exe')}", "E9006"),
    (f"filename {b64('readings.csv.tar')}", "E9006"),
    (f"filename {b64('TP02_CS_202611_20261201083000_001.csv')}", "E9008"),  # another park's file name
    (f"filename {b64('月报.csv')}", "E9101"),  # not named by the §7 rule: the loader would refuse it
    (f"filename {b64('TP01_XX_202611_20261201083000_001.csv')}", "E9101"),
])
def test_hostile_or_wrong_metadata_is_refused_before_any_byte(api, value, expected):
    r = api.generic("POST", "/api/v1/uploads/", b"", content_type=OCTETS, HTTP_UPLOAD_LENGTH="10",
                    HTTP_UPLOAD_METADATA=value, **TUS)
    assert r.status_code in (400,), r.content
    assert code(r) == expected
    assert not Upload.objects.exists()


@pytest.mark.parametrize("name, kind, compression, encrypted", [
    ("TP01_MIX_2026Q4_20261201083000_002.xml.gz", "xml", "gz", False),
    ("TP01_CK_2026_20261201083000_003.xlsx.zip.enc", "xlsx", "zip", True),
    ("TP01_CS_202611_20261201083000_004.CSV", "csv", "", False),
])
def test_the_type_comes_from_the_name(api, name, kind, compression, encrypted):
    r = create(api, 10, filename=name)
    assert r.status_code == 201, r.content
    u = upload_of(r)
    assert (u.kind, u.compression, u.encrypted) == (kind, compression, encrypted)


def test_another_parks_upload_is_refused_at_creation(api, other_park):
    r = create(api, 10, park=other_park.code)
    assert r.status_code == 403 and code(r) == "E9007"
    r = create(api, 10, park="NOPE99")
    assert r.status_code == 403 and code(r) == "E9007"
    assert not Upload.objects.exists()


def test_a_person_with_several_parks_names_the_park(park, other_park):
    user = get_user_model().objects.create_user("clerk")
    for p in (park, other_park):
        set_membership(actor="test", user=user, park=p, role="operator")
    client = APIClient()
    client.force_login(user)
    r = create(client, 10)
    assert r.status_code == 400 and code(r) == "E9009"
    r = create(client, 10, park=other_park.code, filename="TP02_CS_202611_20261201083000_001.csv")
    assert r.status_code == 201 and upload_of(r).park == other_park
    viewer = get_user_model().objects.create_user("viewer")
    set_membership(actor="test", user=viewer, park=park, role="viewer")
    client.force_login(viewer)
    r = create(client, 10, park=park.code)
    assert r.status_code == 403


def test_another_parks_upload_id_reads_as_unknown(api, other_park):
    _token, key = issue_token(actor="test", park=other_park, name="theirs")
    theirs = APIClient()
    theirs.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    url = create(theirs, 10, filename="TP02_CS_202611_20261201083000_001.csv")["Location"]
    assert patch(theirs, url, b"ab", 0).status_code == 204
    for r in (api.get(url), head(api, url), patch(api, url, b"cd", 2),
              api.generic("DELETE", url, **TUS), api.get("/api/v1/uploads/not-a-uuid"),
              api.get("/api/v1/uploads/00000000-0000-0000-0000-000000000000")):
        assert r.status_code == 404, r.content
        if r.content:
            assert code(r) == "E9011"
    assert Upload.objects.get().offset == 2


def test_location_ignores_forwarded_headers_and_follows_public_base_url(api, settings):
    r = create(api, 10, headers={"HTTP_X_FORWARDED_HOST": "evil.example", "HTTP_X_FORWARDED_PROTO": "https",
                                 "HTTP_HOST": "evil.example"})
    assert r["Location"].startswith("/api/v1/uploads/") and "evil" not in r["Location"]
    settings.PUBLIC_BASE_URL = "https://carbon.example.com/"
    r = create(api, 10, headers={"HTTP_X_FORWARDED_HOST": "evil.example"})
    assert r["Location"].startswith("https://carbon.example.com/api/v1/uploads/")


# --- concatenation, termination, expiry -------------------------------------------------------------------------


def test_parts_are_concatenated_in_order_once(api, commits, queue):
    pieces = [b"sourceId,value\n", b"A,1\n", b"B,2\n"]
    urls = []
    for piece in pieces:
        r = create(api, len(piece), headers={"HTTP_UPLOAD_CONCAT": "partial"}, filename="part.csv")
        assert r.status_code == 201, r.content
        assert patch(api, r["Location"], piece, 0).status_code == 204
        assert head(api, r["Location"])["Upload-Concat"] == "partial"
        urls.append(r["Location"])
    whole = b"".join(pieces)
    final = {"HTTP_UPLOAD_CONCAT": "final;" + " ".join(urls)}
    with commits():
        r = create(api, None, headers=final, md5=hashlib.md5(whole).hexdigest())
    assert r.status_code == 201, r.content
    u = upload_of(r)
    assert u.state == "received" and u.path.read_bytes() == whole and u.length == len(whole)
    assert all(not Upload.objects.get(pk=p.rsplit("/", 1)[1]).path.exists() for p in urls)
    h = head(api, r["Location"])
    assert h["Upload-Offset"] == str(len(whole)) and h["Upload-Concat"].startswith("final;/api/v1/uploads/")
    with commits():
        again = create(api, None, headers=final, md5=hashlib.md5(whole).hexdigest())
    assert again.status_code == 201 and again["Location"] == r["Location"]
    assert Upload.objects.filter(concat="final").count() == 1
    assert queue() == 1  # two finals of the same parts: one load
    other = create(api, None, headers={"HTTP_UPLOAD_CONCAT": "final;" + urls[0]})
    assert other.status_code == 400 and code(other) == "E9021"
    nope = patch(api, r["Location"], b"x", len(whole))
    assert nope.status_code == 403 and code(nope) == "E9020"


@pytest.mark.parametrize("concat", ["final;", "final;/api/v1/uploads/xyz", "whole", "final;{u} {u}"])
def test_bad_concatenations_are_400(api, concat):
    r = create(api, 3, headers={"HTTP_UPLOAD_CONCAT": "partial"}, filename="p.csv")
    url = r["Location"]
    r = create(api, None, headers={"HTTP_UPLOAD_CONCAT": concat.format(u=url)})
    assert r.status_code == 400 and code(r) == "E9021"


def test_an_unfinished_part_cannot_be_concatenated(api):
    url = create(api, 3, headers={"HTTP_UPLOAD_CONCAT": "partial"}, filename="p.csv")["Location"]
    r = create(api, None, headers={"HTTP_UPLOAD_CONCAT": f"final;{url}"})
    assert r.status_code == 400 and code(r) == "E9021"


def test_termination_removes_the_bytes(api, commits):
    r = create(api, 10)
    url, path = r["Location"], upload_of(r).path
    patch(api, url, b"abc", 0)
    with commits():
        d = api.generic("DELETE", url, **TUS)
    assert d.status_code == 204 and not path.exists()
    assert head(api, url).status_code == 404
    done = create(api, 1)["Location"]
    patch(api, done, b"x", 0)
    r = api.generic("DELETE", done, **TUS)
    assert r.status_code == 409 and code(r) == "E9022"


def test_an_upload_abandoned_halfway_expires_and_its_bytes_go(api, commits):
    r = create(api, 10)
    url, u = r["Location"], upload_of(r)
    patch(api, url, b"abcde", 0)
    assert u.path.read_bytes() == b"abcde"
    assert services.expire_uploads() == 0  # not yet
    Upload.objects.filter(pk=u.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with commits():
        assert services.expire_uploads() == 1
    assert not u.path.exists()
    h = head(api, url)
    assert h.status_code == 410
    p = patch(api, url, b"fghij", 5)
    assert p.status_code == 410 and code(p) == "E9012"
    assert api.get(url).json()["state"] == "expired"


def test_an_expired_upload_is_410_even_before_the_sweep(api, commits):
    r = create(api, 10)
    Upload.objects.filter(pk=upload_of(r).pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with commits():
        p = patch(api, r["Location"], b"abc", 0)
    assert p.status_code == 410 and code(p) == "E9012"
    assert not upload_of(r).path.exists()


def test_an_unconcatenated_part_expires_too(api):
    r = create(api, 1, headers={"HTTP_UPLOAD_CONCAT": "partial"}, filename="p.csv")
    patch(api, r["Location"], b"x", 0)
    Upload.objects.filter(pk=upload_of(r).pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert services.expire_uploads() == 1 and upload_of(r).state == "expired"


def test_a_lapsed_lease_is_taken_over_and_uncommitted_bytes_are_cut(api):
    r = create(api, 10)
    u = upload_of(r)
    u.path.write_bytes(b"junk-from-a-dead-patch")  # written, never committed (offset 0)
    Upload.objects.filter(pk=u.pk).update(lease="00000000-0000-0000-0000-000000000001",
                                          lease_until=timezone.now() - timedelta(seconds=1))
    assert patch(api, r["Location"], b"abc", 0).status_code == 204
    assert u.path.read_bytes() == b"abc"
    Upload.objects.filter(pk=u.pk).update(lease="00000000-0000-0000-0000-000000000001",
                                          lease_until=timezone.now() + timedelta(seconds=30))
    busy = patch(api, r["Location"], b"def", 3)
    assert busy.status_code == 409 and code(busy) == "E9015"


# --- loading hand-off (the loader of apps.batch) ---------------------------------------------------------------


@pytest.fixture
def reports(settings, tmp_path):
    settings.BATCH_REPORT_ROOT = tmp_path / "reports"
    return settings.BATCH_REPORT_ROOT


def _received(api, data: bytes, **metadata) -> tuple[str, Upload]:
    r = create(api, len(data), **metadata)
    assert patch(api, r["Location"], data, 0).status_code == 204
    u = upload_of(r)
    assert u.state == "received"
    return r["Location"], u


def test_a_received_upload_is_loaded_once_with_its_counts_and_report(api, meter, reports):
    from apps.ingestion.models import Reading
    from tests.batch_files import csv_text, readings

    data = csv_text([*readings(5), "TP01-EM-0001,CS010201,not a time,1,kWh,N"]).encode()
    url, u = _received(api, data)
    assert loading.load(u.pk).state == "loaded"
    u.refresh_from_db()
    assert (u.rows, u.accepted, u.duplicates, u.rejected) == (6, 5, 0, 1) and u.loaded_at
    assert Reading.objects.filter(source=meter).count() == 5
    body = api.get(url).json()
    assert body["state"] == "loaded" and body["load"] == {"rows": 6, "accepted": 5, "duplicates": 0, "rejected": 1}
    assert body["report"]["csv"] == f"{url}/report.csv"
    report = api.get(body["report"]["csv"])
    assert report.status_code == 200 and b"not a time" in b"".join(report.streaming_content)
    assert api.get(f"{url}/report.xlsx").status_code == 200
    nope = api.get(f"{url}/report.pdf")
    assert nope.status_code == 404 and code(nope) == "E9023"
    assert loading.load(u.pk).loaded_at == u.loaded_at  # delivered twice: loaded once
    assert Reading.objects.filter(source=meter).count() == 5


def test_a_malformed_file_fails_whole_with_the_loaders_code_and_nothing_is_stored(api, meter, reports):
    from apps.ingestion.models import Reading

    url, u = _received(api, b"this,is,not,the,header\n1,2,3,4,5\n")
    assert loading.load(u.pk).state == "failed"
    body = api.get(url, HTTP_ACCEPT_LANGUAGE="en").json()
    assert body["state"] == "failed" and body["error"]["code"].startswith("E91") and body["error"]["message"]
    assert not Reading.objects.exists()


def test_a_report_outside_the_report_folder_is_never_served(api, meter, reports, tmp_path):
    url, u = _received(api, b"x")
    secret = tmp_path / "secret.csv"
    secret.write_text("secret")
    Upload.objects.filter(pk=u.pk).update(state="loaded", report_csv=str(reports / ".." / "secret.csv"))
    r = api.get(f"{url}/report.csv")
    assert r.status_code == 404 and code(r) == "E9023"




def test_loaded_files_are_kept_unless_a_retention_is_set_then_removed_audited_and_the_row_stays(
        api, meter, reports, settings, commits):
    from apps.core.models import AuditEntry
    from apps.uploads.retention import remove_old_files
    from tests.batch_files import csv_text, readings

    url, loaded = _received(api, csv_text(readings(3)).encode(), filename=NAME)
    assert loading.load(loaded.pk).state == "loaded"
    _, failed = _received(api, b"not,the,header\n1,2,3\n", filename=NAME.replace("_001", "_002"))
    assert loading.load(failed.pk).state == "failed"
    receiving = upload_of(create(api, 10, filename=NAME.replace("_001", "_003")))
    long_ago = timezone.now() - timedelta(days=40)
    Upload.objects.filter(pk__in=[loaded.pk, failed.pk]).update(loaded_at=long_ago)
    Upload.objects.filter(pk=receiving.pk).update(created_at=long_ago)

    assert settings.UPLOAD_RETENTION_DAYS == 0  # the default keeps every file
    assert remove_old_files() == 0 and loaded.path.exists() and failed.path.exists()

    settings.UPLOAD_RETENTION_DAYS = 60
    assert remove_old_files() == 0  # loaded 40 days ago: still within 60
    settings.UPLOAD_RETENTION_DAYS = 30
    with commits():
        assert remove_old_files() == 2
    assert not loaded.path.exists() and not failed.path.exists() and receiving.path.exists()
    loaded.refresh_from_db()
    assert loaded.bytes_removed_at is not None and loaded.state == "loaded" and loaded.accepted == 3
    assert api.get(url).json()["load"]["accepted"] == 3  # the row and its counts stay
    audit = AuditEntry.objects.filter(action="upload.remove_file").order_by("object_id")
    assert sorted(a.object_id for a in audit) == sorted([str(loaded.pk), str(failed.pk)])
    with commits():
        assert remove_old_files() == 0  # once
