"""The REST pull connector (issue #13 item 6, R-7.1.1.2, R-8.1.2.2) against a local fake platform over real HTTP:
incremental pulls from a next-page token or a watermark, full pulls over a window, and the bad answers a third
party gives (500, 429 with Retry-After, slow, malformed JSON, huge numbers, NUL bytes, a mapping that misses)."""

from __future__ import annotations

import json
import socket
import time

import pytest

from apps.core.crypto import open_secret
from apps.core.errors import CarbonParkError
from apps.core.models import AuditEntry
from apps.ingestion.models import IngestBatch, Reading, Rejection
from apps.pulls.models import Connector, PullRun
from apps.pulls.services import run_connector, save_connector
from tests.conftest import add_source
from tests.pull_fakes import MAPPING, FakePlatform, item, page


@pytest.fixture
def platform(settings):
    settings.PULLS_ALLOW_PLAIN_HTTP = True
    with FakePlatform() as fake:
        yield fake


def connector(park, url, *, mapping=MAPPING, secret="tok-123", **extra):
    cfg = {"url": url, "records": "/data", "next": "/next", "auth": "bearer", "backoff_seconds": 0.05,
           "connect_timeout": 2, "read_timeout": 5, **extra}
    return save_connector(actor="test", park=park, name=f"platform {Connector.objects.count()}", kind="rest",
                          settings=cfg, mapping=mapping, secret=secret)


def tokens_pages(query):
    pages = {None: page([item(0), item(5)], "t2"), "t2": page([item(10), item(15)], "t3"),
             "t3": page([item(20)], None)}
    return pages[query.get("cursor")]


def test_incremental_pull_follows_next_tokens_stores_once_and_saves_the_cursor(park, meter, platform):
    platform.handler = tokens_pages
    c = connector(park, platform.url)
    run = run_connector(c.pk)
    assert (run.state, run.pages, run.pulled, run.accepted, run.rejected) == ("done", 3, 5, 5, 0)
    c.refresh_from_db()
    assert c.cursor == {"token": "t3"} and run.cursor_after == {"token": "t3"}
    assert Reading.objects.filter(source=meter, channel="third_party").count() == 5
    assert set(IngestBatch.objects.filter(channel="third_party").values_list("actor_label", flat=True)) == {
        f"pull:rest:{c.pk}"}
    assert platform.requests[0][3]["Authorization"] == "Bearer tok-123"
    # the next run starts at the saved token: the last page again, its readings repeats, nothing stored twice
    again = run_connector(c.pk)
    assert (again.state, again.pulled, again.accepted, again.duplicates) == ("done", 1, 0, 1)
    assert platform.requests[-1][2]["cursor"] == "t3"
    assert Reading.objects.filter(source=meter).count() == 5


def test_watermark_pull_asks_since_the_last_timestamp_and_a_full_pull_leaves_the_cursor(park, meter, platform):
    data = [item(m) for m in (0, 5, 10)]

    def handler(query):
        since = query.get("since")
        return page([d for d in data if since is None or d["time"] > since])

    platform.handler = handler
    c = connector(park, platform.url, since_param="since", next="")
    assert run_connector(c.pk).accepted == 3
    c.refresh_from_db()
    assert c.cursor == {"since": "2026-11-23 10:10:00"}
    data.append(item(15))
    run = run_connector(c.pk)
    assert (run.pulled, run.accepted) == (1, 1) and platform.requests[-1][2]["since"] == "2026-11-23 10:10:00"
    from datetime import UTC, datetime

    full = run_connector(c.pk, mode="full", window=(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1,
                                                                                                tzinfo=UTC)))
    assert (full.state, full.pulled, full.accepted, full.duplicates) == ("done", 4, 0, 4)
    assert platform.requests[-1][2]["from"].startswith("2026-11-01") and "since" not in platform.requests[-1][2]
    c.refresh_from_db()
    assert c.cursor == {"since": "2026-11-23 10:15:00"}
    assert Reading.objects.filter(source=meter).count() == 4


def test_500_is_retried_then_the_run_fails_without_moving_the_cursor(park, meter, platform):
    answers = [(500, {}, b"oops"), (503, {}, b""), page([item(0)])]
    platform.handler = lambda q: answers.pop(0) if answers else page([])
    c = connector(park, platform.url, retries=3)
    run = run_connector(c.pk)
    assert (run.state, run.accepted) == ("done", 1) and len(platform.requests) == 3
    platform.handler = lambda q: (500, {}, b"down")
    before = Connector.objects.get(pk=c.pk).cursor
    failed = run_connector(c.pk)
    assert (failed.state, failed.error_code, failed.error_params["status"]) == ("failed", "E7504", 500)
    assert Connector.objects.get(pk=c.pk).cursor == before and Connector.objects.get(pk=c.pk).last_error_code == "E7504"
    assert "HTTP 500" in failed.error_message("en") and "HTTP 500" in failed.error_message("zh-hans")


def test_429_waits_for_retry_after(park, meter, platform):
    answers = [(429, {"Retry-After": "1"}, b"slow down"), page([item(0)])]
    platform.handler = lambda q: answers.pop(0) if answers else page([])
    c = connector(park, platform.url)
    run = run_connector(c.pk)
    assert (run.state, run.accepted) == ("done", 1)
    assert platform.requests[1][0] - platform.requests[0][0] >= 0.95


def test_a_slow_platform_times_out_with_its_code(park, meter, platform):
    def slow(query):
        time.sleep(2)
        return page([item(0)])

    platform.handler = slow
    c = connector(park, platform.url, read_timeout=0.5, retries=0)
    started = time.monotonic()
    run = run_connector(c.pk)
    assert (run.state, run.error_code, run.accepted) == ("failed", "E7505", 0)
    assert time.monotonic() - started < 1.9
    assert not Reading.objects.exists()


def test_malformed_json_stores_nothing_of_the_page(park, meter, platform):
    platform.handler = lambda q: (200, {}, b'{"data": [{"meter": {"id": "TP01-EM-0001"}, "reading": 1,')
    c = connector(park, platform.url)
    run = run_connector(c.pk)
    assert (run.state, run.error_code, run.pages) == ("failed", "E7506", 0)
    platform.handler = lambda q: (200, {}, b'{"data": {"not": "a list"}}')
    assert run_connector(c.pk).error_code == "E7506"
    platform.handler = lambda q: (200, {}, b'{"data": [{"reading": NaN}]}')
    assert run_connector(c.pk).error_code == "E7506"
    assert not Reading.objects.exists() and Connector.objects.get(pk=c.pk).cursor is None


def test_huge_numbers_and_nul_bytes_are_rejected_per_record_and_the_rest_stored(park, meter, platform):
    huge_int = "9" * 5000
    body = ('{"data": [' + json.dumps(item(0)) + ","
            + json.dumps(item(5))[:-1].replace('"reading": 1.5', f'"reading": {huge_int}') + "},"
            + json.dumps(item(10)).replace("1.5", "1e999") + ","
            + json.dumps(item(15, source="TP01\u0000EM-0001")) + ","
            + json.dumps({**item(20), "u": "kW\u0000h"}) + "]}").encode()
    platform.handler = lambda q: (200, {}, body)
    c = connector(park, platform.url)
    run = run_connector(c.pk)
    assert (run.state, run.pulled, run.accepted, run.rejected) == ("done", 5, 1, 4)
    codes = sorted(Rejection.objects.values_list("code", flat=True))
    assert len(codes) == 4 and all(code.startswith("E2") for code in codes)
    assert "E2008" in codes  # 1e999: not finite
    assert Reading.objects.get().value == 1.5


def test_a_mapping_pointing_to_a_missing_field_rejects_the_records_with_their_code(park, meter, platform):
    platform.handler = lambda q: page([item(0), item(5)])
    c = connector(park, platform.url, mapping={**MAPPING, "timestamp": "/when/at"})
    run = run_connector(c.pk)
    assert (run.state, run.accepted, run.rejected) == ("done", 0, 2)
    assert set(Rejection.objects.values_list("code", "field")) == {("E2001", "timestamp")}
    with pytest.raises(CarbonParkError) as exc:
        connector(park, platform.url, mapping={**MAPPING, "colour": "/c"})
    assert exc.value.error.code == "E7501"
    with pytest.raises(CarbonParkError):
        connector(park, platform.url, mapping={"sourceId": "/a", "value": "/v"})  # no timestamp


def test_records_of_another_park_are_refused(park, meter, other_park, platform):
    add_source(other_park, "TP02-EM-0001", ["CS010201"])
    platform.handler = lambda q: page([item(0), item(5, source="TP02-EM-0001")])
    run = run_connector(connector(park, platform.url).pk)
    assert (run.accepted, run.rejected) == (1, 1)
    assert not Reading.objects.filter(source__source_id="TP02-EM-0001").exists()


def test_an_unreachable_platform_fails_with_its_code(park, meter, settings):
    settings.PULLS_ALLOW_PLAIN_HTTP = True
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = connector(park, f"http://127.0.0.1:{port}/readings", retries=1)
    run = run_connector(c.pk)
    assert (run.state, run.error_code) == ("failed", "E7503") and run.finished_at is not None
    c.refresh_from_db()
    assert c.next_run_at > run.started_at and c.last_run_at is not None


def test_plain_http_is_refused_unless_allowed_and_the_secret_is_sealed(park, settings):
    settings.PULLS_ALLOW_PLAIN_HTTP = False
    with pytest.raises(CarbonParkError) as exc:
        connector(park, "http://example.invalid/readings")
    assert exc.value.error.code == "E7501" and "https" in str(exc.value)
    c = connector(park, "https://example.invalid/readings", secret="very-secret-token")
    raw = bytes(Connector.objects.get(pk=c.pk).secret_sealed)
    assert b"very-secret-token" not in raw
    assert open_secret(raw, f"pulls.connector:{c.pk}") == b"very-secret-token"
    entry = AuditEntry.objects.get(action="pulls.connector.create", object_id=str(c.pk))
    assert "very-secret-token" not in json.dumps(entry.after) and entry.after["secret"] == "set"
    for bad in ({"url": "https://x.invalid/", "read_timeout": 61}, {"url": "https://x.invalid/", "connect_timeout": 31},
                {"url": "ftp://x.invalid/"}, {"url": "https://x.invalid/", "max_pages": 0}):
        with pytest.raises(CarbonParkError):
            save_connector(actor="test", park=park, name="bad", kind="rest", settings=bad, mapping=MAPPING)


def test_an_untrusted_certificate_is_refused(park, meter, tmp_path):
    """TLS verified (R-8.1.2.2): a platform whose certificate no CA we trust signed is refused with E7509."""
    import ssl
    import threading
    from datetime import UTC, datetime, timedelta
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(__import__("ipaddress").ip_address(
                "127.0.0.1"))]), critical=False).sign(key, hashes.SHA256()))
    (tmp_path / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "k.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = json.dumps({"data": [item(0)]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"https://127.0.0.1:{server.server_address[1]}/readings"
        c = connector(park, url, retries=0)
        run = run_connector(c.pk)
        assert (run.state, run.error_code) == ("failed", "E7509") and not Reading.objects.exists()
        trusted = connector(park, url, retries=0, ca_file=str(tmp_path / "c.pem"))  # the operator's own CA
        assert run_connector(trusted.pk).accepted == 1
    finally:
        server.shutdown()
        server.server_close()


def test_runs_are_logged_and_a_locked_connector_is_skipped(park, meter, platform):
    from django.db import connection

    from apps.pulls.services import LOCK_SPACE

    platform.handler = lambda q: page([item(0)])
    c = connector(park, platform.url)
    import psycopg

    settings_db = connection.settings_dict
    other = psycopg.connect(host=settings_db["HOST"], port=settings_db["PORT"] or 5432, user=settings_db["USER"],
                            dbname=settings_db["NAME"], password=settings_db["PASSWORD"] or None, autocommit=True)
    try:
        other.execute("SELECT pg_advisory_lock(%s, %s)", [LOCK_SPACE, c.pk])
        assert run_connector(c.pk) is None and not PullRun.objects.exists()
    finally:
        other.close()
    run = run_connector(c.pk)
    assert run.state == "done" and PullRun.objects.count() == 1


def test_a_failure_mid_run_keeps_what_was_committed_and_the_next_run_goes_on_from_there(park, meter, platform):
    broken = {"t2": True}

    def handler(query):
        if query.get("cursor") == "t2" and broken["t2"]:
            return 200, {}, b'{"data": [ oops'
        return tokens_pages(query)

    platform.handler = handler
    c = connector(park, platform.url)
    first = run_connector(c.pk)
    assert (first.state, first.error_code, first.pages, first.accepted) == ("failed", "E7506", 1, 2)
    assert Connector.objects.get(pk=c.pk).cursor == {"token": "t2"}  # page 1 stored with its cursor
    broken["t2"] = False
    second = run_connector(c.pk)
    assert (second.state, second.accepted, second.duplicates) == ("done", 3, 0)
    assert platform.requests[-2][2]["cursor"] == "t2"
    assert Reading.objects.filter(source=meter).count() == 5


def test_a_crash_inside_a_pages_transaction_stores_nothing_of_it_and_keeps_the_cursor(park, meter, platform,
                                                                                      monkeypatch):
    """The page's readings and its cursor commit together: a crash between them leaves neither."""
    from apps.pulls import services

    platform.handler = tokens_pages
    c = connector(park, platform.url)
    real_update = services.Connector.objects.filter

    def crash(*args, **kwargs):
        qs = real_update(*args, **kwargs)

        class Boom:
            def update(self, **fields):
                if "cursor" in fields:
                    raise RuntimeError("process killed here")
                return qs.update(**fields)

        return Boom()

    monkeypatch.setattr(services.Connector.objects, "filter", crash)
    run = run_connector(c.pk)
    monkeypatch.undo()
    assert (run.state, run.error_code, run.pages) == ("failed", "E1017", 0)
    assert not Reading.objects.exists() and Connector.objects.get(pk=c.pk).cursor is None
    again = run_connector(c.pk)
    assert (again.state, again.accepted, again.duplicates) == ("done", 5, 0)
    assert Reading.objects.count() == 5
