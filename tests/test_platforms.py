"""Third-party platforms (interfaces.md §6, R-7.4): registration, signed auth, subscriptions, pushes, limits and
suspension; every bad input of issue #13 gets its code, nothing is stored twice, nothing is lost."""

import time

import pytest
from django.contrib.auth import get_user_model

from apps.accounts.services import set_membership
from apps.core.crypto import open_secret
from apps.core.models import AuditEntry
from apps.ingestion.models import Reading, Rejection
from apps.integrations.models import Platform
from apps.quality.models import Alarm
from tests.conftest import make_uscc
from tests.open_platform import OpenClient, new_platform
from tests.test_api_contract import assert_matches, openapi  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _http_urls(settings):
    settings.OPEN_ALLOW_HTTP_URLS = True


@pytest.fixture
def hub(park):
    return new_platform(park)


@pytest.fixture
def cli(hub):
    platform, secret = hub
    c = OpenClient(platform, secret)
    assert c.auth().status_code == 200
    return c


def ts(minute):
    return f"2026-11-23 10:{minute:02d}:00"


# --- registration (R-7.4.2.1) ----------------------------------------------------------------------


def test_registration_seals_the_secret_and_audits(park):
    platform, secret = new_platform(park, whitelist=["203.0.113.7", "2001:db8::/32"])
    stored = Platform.objects.get(pk=platform.pk)
    assert secret.encode() not in bytes(stored.secret_sealed)
    assert open_secret(stored.secret_sealed, f"integrations.platform:{stored.app_id}") == secret.encode()
    assert stored.ip_whitelist == ["203.0.113.7/32", "2001:db8::/32"]
    entry = AuditEntry.objects.get(action="platform.register", object_id=str(platform.pk))
    assert entry.park_code == park.code and secret not in str(entry.after)


@pytest.mark.parametrize("field,value,code", [
    ("uscc", "91110000MA01GRN0X0", "E7415"), ("uscc", "\x00" * 18, "E7415"),
    ("ip_whitelist", ["10.0.0.300"], "E7416"), ("ip_whitelist", ["\x00"], "E7416"),
    ("base_url", "ftp://x.example", "E7419"), ("alert_email", "not-an-address", "E7409"),
])
def test_registration_refuses_bad_fields(park, field, value, code):
    from apps.core.errors import CarbonParkError

    with pytest.raises(CarbonParkError) as exc:
        new_platform(park, **{field: value})
    assert exc.value.error.code == code
    assert not Platform.objects.exists()


def test_registration_over_the_api_by_a_park_administrator_only(park, other_park, client):
    users = get_user_model().objects
    admin, viewer = users.create_user("boss", "b@x.invalid", "pw-Platforms-1"), users.create_user(
        "v", "v@x.invalid", "pw-Platforms-1")
    set_membership(actor="test", user=admin, park=park, role="admin")
    set_membership(actor="test", user=viewer, park=park, role="viewer")
    body = {"park": park.code, "name": "CCER registry", "uscc": make_uscc("91110000MA01CCER0"),
            "base_url": "https://ccer.example", "ip_whitelist": ["198.51.100.0/24"], "alert_email": "a@ccer.example"}
    client.force_login(viewer)
    assert client.post("/api/v1/platforms", body, content_type="application/json").status_code == 403
    client.force_login(admin)
    r = client.post("/api/v1/platforms", {**body, "park": other_park.code}, content_type="application/json")
    assert r.status_code == 403 and not Platform.objects.exists()  # another park: as if unknown
    r = client.post("/api/v1/platforms", body, content_type="application/json")
    assert r.status_code == 201, r.content
    assert r.json()["platform"]["app_id"].startswith("cp") and len(r.json()["secret"]) >= 40
    listed = client.get("/api/v1/platforms").json()
    assert [p["name"] for p in listed] == ["CCER registry"] and "secret" not in listed[0]


# --- auth (R-7.4.2.2, R-7.4.3.1) --------------------------------------------------------------------


def test_auth_gives_a_bearer_token(hub):
    c = OpenClient(*hub)
    r = c.auth()
    assert r.status_code == 200 and r.json()["expiresIn"] == 7200 and r.json()["token"].startswith("cpo_")


@pytest.mark.parametrize("case,code,status", [
    ("bad_signature", "E7401", 401), ("replayed_nonce", "E7402", 401), ("old_timestamp", "E7403", 401),
    ("future_timestamp", "E7403", 401), ("outside_whitelist", "E7404", 403), ("unknown_app", "E7414", 401),
    ("nul_nonce", "E7409", 400), ("number_signature", "E7409", 400),
])
def test_auth_refusals(hub, case, code, status):
    platform, secret = hub
    c = OpenClient(platform, secret, ip="198.51.100.9" if case == "outside_whitelist" else "127.0.0.1")
    body = c.auth_body()
    if case == "bad_signature":
        body = c.auth_body(secret="wrong")
    elif case == "replayed_nonce":
        assert c.auth(body).status_code == 200
    elif case == "old_timestamp":
        body = c.auth_body(ts=str(int(time.time()) - 301))
    elif case == "future_timestamp":
        body = c.auth_body(ts=str(int(time.time()) + 400))
    elif case == "unknown_app":
        body["app_id"] = "cp0000000000000000"
    elif case == "nul_nonce":
        body["nonce"] = "abc\x00defgh"
    elif case == "number_signature":
        body["signature"] = 12345
    r = c.auth(body)
    assert (r.status_code, r.json()["code"]) == (status, code)
    assert "token" not in r.json()


def test_three_consecutive_auth_failures_suspend_mail_and_alarm(hub, settings, django_capture_on_commit_callbacks):
    from tests.smtp_fake import SmtpFake

    platform, secret = hub
    c = OpenClient(platform, secret)
    with SmtpFake() as smtp:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", smtp.port, False
        with django_capture_on_commit_callbacks(execute=True):
            assert c.auth(c.auth_body(secret="x")).json()["code"] == "E7401"
            assert c.auth().status_code == 200  # a success in between: failures are consecutive ones
            for _ in range(2):
                assert c.auth(c.auth_body(secret="x")).json()["code"] == "E7401"
            assert Platform.objects.get(pk=platform.pk).state == "active"
            assert c.auth(c.auth_body(ts="1")).json()["code"] == "E7403"  # the third in a row
        (_from, rcpt, data), = smtp.wait(1)
    assert rcpt == ["ops@hub.example"] and platform.app_id.encode() in data
    assert Platform.objects.get(pk=platform.pk).state == "suspended"
    alarm = Alarm.objects.get(park=platform.park, kind="integration")
    assert alarm.code == "E7403" and platform.app_id in alarm.message_en
    # suspended: even the right signature is refused, and a token issued before stops working
    r = c.auth()
    assert (r.status_code, r.json()["code"]) == (403, "E7406")
    assert c.subscribe(["CO010101"]).json()["code"] == "E7406"


def test_expired_or_unknown_token(cli, settings):
    from apps.integrations import limits

    limits.client().delete(limits._token_key(cli.token))  # what its expiry does
    r = cli.subscribe(["CO010101"])
    assert (r.status_code, r.json()["code"]) == (401, "E7405")
    cli.token = "cpo_" + "x" * 40
    assert cli.subscribe(["CO010101"]).json()["code"] == "E7405"
    cli.token = "\x00"
    assert cli.subscribe(["CO010101"]).json()["code"] == "E7405"


def test_token_expires_with_its_ttl(hub, settings):
    settings.OPEN_TOKEN_TTL_S = 1
    c = OpenClient(*hub)
    assert c.auth().json()["expiresIn"] == 1
    time.sleep(1.2)
    assert c.subscribe(["CO010101"]).json()["code"] == "E7405"


def test_a_token_used_from_outside_the_whitelist(cli):
    cli.http = type(cli.http)(REMOTE_ADDR="198.51.100.9")
    r = cli.subscribe(["CO010101"])
    assert (r.status_code, r.json()["code"]) == (403, "E7404")


# --- subscribe and push (R-7.4.2.3, R-7.4.2.4) ------------------------------------------------------


def test_subscribe_push_and_idempotency(cli, park):
    r = cli.subscribe(["CO010101", "CO020101"], frequency="monthly", callbackUrl="http://127.0.0.1:9/cb")
    assert r.status_code == 200, r.content
    topic, template = r.json()["topic_code"], r.json()["template"]
    assert template["record"]["sourceId"] == topic and template["rateLimit"] == {"requestsPerMinute": 100}
    assert [c["code"] for c in template["dataCodes"]] == ["CO010101", "CO020101"]
    records = [{"dataCode": "CO010101", "timestamp": ts(0), "value": 12.5, "unit": "MWh"},
               {"sourceId": topic, "dataCode": "CO020101", "timestamp": ts(0), "value": 3}]
    r = cli.push(topic, records, key="k-1")
    assert (r.status_code, r.json()) == (200, {"accepted": 2, "duplicates": 0, "rejected": []})
    again = cli.push(topic, records, key="k-1")
    assert again.status_code == 200 and again["Idempotent-Replayed"] == "true"
    assert cli.push(topic, records).json() == {"accepted": 0, "duplicates": 2, "rejected": []}
    assert Reading.objects.filter(source__source_id=topic).count() == 2
    assert set(Reading.objects.values_list("park_id", flat=True)) == {park.pk}
    r = cli.push(topic, records + [{"dataCode": "CO010101", "timestamp": ts(5), "value": 1}], key="k-1")
    assert (r.status_code, r.json()["code"]) == (409, "E1005")


def test_bad_records_get_their_codes_and_the_good_ones_are_kept(cli, park, other_park):
    from tests.conftest import add_source

    add_source(other_park, "TP02-EM-0001", ["CO010101"])
    add_source(park, "TP01-EM-0009", ["CO010101"])
    topic = cli.subscribe(["CO010101"]).json()["topic_code"]
    records = [
        {"dataCode": "CO010101", "timestamp": ts(0), "value": 1},
        {"dataCode": "CS010201", "timestamp": ts(0), "value": 1},  # outside the subscription's codes
        {"sourceId": "TP02-EM-0001", "dataCode": "CO010101", "timestamp": ts(0), "value": 1},  # another park's
        {"sourceId": "TP01-EM-0009", "dataCode": "CO010101", "timestamp": ts(0), "value": 1},  # not the topic's
        {"dataCode": "CO010101", "timestamp": "yesterday", "value": 1},
        "not a record",
        {"timestamp": ts(10), "value": 1e400 if False else 2},  # dataCode omitted: the topic has one code
    ]
    r = cli.push(topic, records)
    assert r.status_code == 400
    body = r.json()
    assert body["accepted"] == 2
    assert [(x["index"], x["code"]) for x in body["rejected"]] == [
        (1, "E7408"), (2, "E7412"), (3, "E7412"), (4, body["rejected"][3]["code"]), (5, body["rejected"][4]["code"])]
    assert body["rejected"][3]["code"].startswith("E2") and body["rejected"][4]["code"].startswith("E2")
    assert Reading.objects.filter(source__source_id=topic).count() == 2
    assert not Reading.objects.filter(source__source_id__in=["TP02-EM-0001", "TP01-EM-0009"]).exists()
    assert Rejection.objects.filter(code__in=["E7408", "E7412"]).count() == 3  # kept, with their raw content


def test_unknown_or_foreign_topic(cli, park):
    other, other_secret = new_platform(park)
    c2 = OpenClient(other, other_secret)
    c2.auth()
    foreign = c2.subscribe(["CO010101"]).json()["topic_code"]
    for topic in ("nope", foreign, "\x00"):
        r = cli.push(topic, [{"dataCode": "CO010101", "timestamp": ts(0), "value": 1}])
        assert (r.status_code, r.json()["code"]) == ((404, "E7407") if topic != "\x00" else (400, "E7409"))
    assert not Reading.objects.exists()


def test_uncertified_platform_cannot_feed_items_that_need_proof(park):
    platform, secret = new_platform(park, certified=False)
    c = OpenClient(platform, secret)
    c.auth()
    r = c.subscribe(["CO010101"])  # green certificates: evidence
    assert (r.status_code, r.json()["code"]) == (403, "E7411")
    assert c.subscribe(["CS010201"]).status_code == 200  # electricity: no proof of source required


@pytest.mark.parametrize("codes,code", [([], "E7409"), (["CS0102"], "E7409"), (["ZZ999999"], "E7410"),
                                        ("CS010201", "E7409"), ([1], "E7409")])
def test_subscribe_refusals(cli, codes, code):
    r = cli.subscribe(codes)
    assert r.status_code in (400, 403) and r.json()["code"] == code


def test_body_over_the_limit_and_bad_json(cli, settings):
    topic = cli.subscribe(["CO010101"]).json()["topic_code"]
    settings.OPEN_DATA_MAX_BYTES = 1000
    r = cli.push(topic, [{"dataCode": "CO010101", "timestamp": ts(0), "value": 1, "pad": "x" * 2000}])
    assert (r.status_code, r.json()["code"]) == (413, "E1004")
    r = cli.post("/api/v1/open/data", b"{not json")
    assert (r.status_code, r.json()["code"]) == (400, "E1001")
    settings.OPEN_DATA_MAX_RECORDS = 2
    r = cli.push(topic, [{"dataCode": "CO010101", "timestamp": ts(i), "value": 1} for i in range(3)])
    assert (r.status_code, r.json()["code"]) == (400, "E1003")
    assert not Reading.objects.exists()


def test_ten_failed_pushes_within_an_hour_suspend(cli, django_capture_on_commit_callbacks):
    topic = cli.subscribe(["CO010101"]).json()["topic_code"]
    with django_capture_on_commit_callbacks(execute=False):
        for i in range(9):
            r = cli.push(topic, [{"dataCode": "CO010101", "timestamp": "bad", "value": i}])
            assert r.status_code == 400
        assert cli.push(topic, [{"dataCode": "CO010101", "timestamp": ts(1), "value": 1}]).status_code == 200
        assert Platform.objects.get(pk=cli.platform.pk).state == "active"
        assert cli.push("unknown", [{"value": 1}]).status_code == 404  # the tenth failure
    platform = Platform.objects.get(pk=cli.platform.pk)
    assert platform.state == "suspended" and "10 failed pushes" in platform.state_reason
    r = cli.push(topic, [{"dataCode": "CO010101", "timestamp": ts(2), "value": 1}])
    assert (r.status_code, r.json()["code"]) == (403, "E7406")
    assert Reading.objects.count() == 1


def test_resume_by_a_park_administrator_is_audited(cli, park, client):
    from apps.integrations.services import suspend_platform

    suspend_platform(cli.platform, reason="test", code="E7401")
    users = get_user_model().objects
    admin = users.create_user("boss", "b@x.invalid", "pw-Platforms-1")
    clerk = users.create_user("clerk", "c@x.invalid", "pw-Platforms-1")
    set_membership(actor="test", user=admin, park=park, role="admin")
    set_membership(actor="test", user=clerk, park=park, role="operator")
    url = f"/api/v1/platforms/{cli.platform.pk}/resume"
    client.force_login(clerk)
    assert client.post(url, {}, content_type="application/json").status_code == 403
    client.force_login(admin)
    assert client.post("/api/v1/platforms/999999/resume", {}, content_type="application/json").json()["code"] == \
        "E7417"
    r = client.post(url, {"reason": "fixed their clock"}, content_type="application/json")
    assert r.status_code == 200 and r.json()["state"] == "active"
    entry = AuditEntry.objects.get(action="platform.resume")
    assert entry.actor_label == "boss" and entry.reason == "fixed their clock"
    assert cli.auth().status_code == 200


# --- rate limit (R-7.4.1.3) ---------------------------------------------------------------------------


def test_the_101st_request_in_a_minute_is_refused_with_retry_after(cli, hub, park):
    topic = cli.subscribe(["CO010101"]).json()["topic_code"]  # request 2 (the auth was the first)
    record = [{"dataCode": "CO010101", "timestamp": ts(0), "value": 1}]
    for _ in range(98):  # requests 3..100: replays of one push, cheap
        assert cli.push(topic, record, key="same").status_code == 200
    r = cli.push(topic, record, key="same")
    assert (r.status_code, r.json()["code"]) == (429, "E7413")
    assert 1 <= int(r["Retry-After"]) <= 60
    assert Platform.objects.get(pk=cli.platform.pk).state == "active"  # a 429 is no failed push
    # another app_id has its own budget; a per-platform override is honoured
    other, secret = new_platform(park, rate_limit=2)
    c2 = OpenClient(other, secret)
    assert c2.auth().status_code == 200
    assert c2.subscribe(["CO010101"]).status_code == 200
    r = c2.subscribe(["CO010101"])
    assert r.status_code == 429 and r.json()["code"] == "E7413"
    assert Reading.objects.count() == 1


def test_the_limit_is_shared_through_redis(cli):
    """Another worker (another limiter over the same Redis) sees the same count."""
    from django.conf import settings
    from limits import RateLimitItemPerMinute
    from limits.storage import RedisStorage
    from limits.strategies import MovingWindowRateLimiter

    other_worker = MovingWindowRateLimiter(RedisStorage(settings.REDIS_URL, key_prefix="cp:open:rate"))
    item = RateLimitItemPerMinute(100)
    assert other_worker.get_window_stats(item, cli.platform.app_id).remaining == 99  # the auth call
    for _ in range(99):
        other_worker.hit(item, cli.platform.app_id)
    r = cli.subscribe(["CO010101"])
    assert r.status_code == 429 and "Retry-After" in r


def test_open_api_answers_match_the_schema(cli, openapi):  # noqa: F811
    for path in ("/api/v1/open/auth", "/api/v1/open/subscribe", "/api/v1/open/data", "/api/v1/platforms"):
        assert path in openapi["paths"], path
    r = cli.subscribe(["CO010101"])
    assert_matches(openapi, "/api/v1/open/subscribe", "POST", r)
    topic = r.json()["topic_code"]
    assert_matches(openapi, "/api/v1/open/data", "POST",
                   cli.push(topic, [{"dataCode": "CO010101", "timestamp": ts(0), "value": 1}]))
    assert_matches(openapi, "/api/v1/open/data", "POST", cli.push(topic, [{"dataCode": "X", "value": 1}]))
    assert_matches(openapi, "/api/v1/open/data", "POST", cli.push("nope", [{"value": 1}]))
    assert_matches(openapi, "/api/v1/open/auth", "POST", cli.auth())
    assert_matches(openapi, "/api/v1/open/auth", "POST", cli.auth(cli.auth_body(secret="x")))


def test_a_corrected_repush_and_a_backfill_are_accepted_once_and_flagged(cli):
    """R-7.4.3.1: the rejected record re-pushed corrected within minutes is stored, its good neighbour not twice;
    R-7.4.3.3: records re-sent after an outage with backfill=true are accepted and carry the backfill flag (the
    windows themselves: tests/test_platform_resubmissions.py)."""
    from datetime import timedelta

    from django.utils import timezone

    from apps.ingestion.models import Flag

    r0 = cli.subscribe(["CO010101"])
    assert r0.status_code == 200, r0.content
    topic = r0.json()["topic_code"]
    good = {"dataCode": "CO010101", "timestamp": ts(0), "value": 1}
    r = cli.push(topic, [good, {"dataCode": "CO010101", "timestamp": "2026-11-23 10:05", "value": 2}])
    assert r.status_code == 400 and [x["index"] for x in r.json()["rejected"]] == [1]
    r = cli.push(topic, [good, {"dataCode": "CO010101", "timestamp": ts(5), "value": 2}])
    assert (r.status_code, r.json()["accepted"], r.json()["duplicates"]) == (200, 1, 1)
    # the health probe saw the platform recover an hour ago
    Platform.objects.filter(pk=cli.platform.pk).update(recovered_at=timezone.now() - timedelta(hours=1))
    r = cli.push(topic, [{"dataCode": "CO010101", "timestamp": f"2026-11-22 {h:02d}:00:00", "value": h,
                          "backfill": True} for h in range(24)])
    assert (r.status_code, r.json()["accepted"]) == (200, 24)
    readings = Reading.objects.filter(source__source_id=topic)
    assert readings.count() == 26
    assert readings.filter(flags=Flag.BACKFILL).count() == 24


def test_auth_calls_count_against_the_limit_too(park):
    platform, secret = new_platform(park, rate_limit=1)
    c = OpenClient(platform, secret)
    assert c.auth().status_code == 200
    r = c.auth()
    assert (r.status_code, r.json()["code"]) == (429, "E7413") and 1 <= int(r["Retry-After"]) <= 60
    assert Platform.objects.get(pk=platform.pk).auth_failures == 0  # a 429 is no authentication failure


@pytest.mark.parametrize("path,body", [
    ("/api/v1/open/data", b"[]"), ("/api/v1/open/data", b'"x"'), ("/api/v1/open/data", b'{"topic_code": 5}'),
    ("/api/v1/open/data", b'{"topic_code": "t", "records": {}}'), ("/api/v1/open/data", b'{"records": []}'),
    ("/api/v1/open/data", b'{"topic_code": "\\u0000", "records": [1]}'), ("/api/v1/open/data", b"\xff\xfe"),
    ("/api/v1/open/subscribe", b'{"dataCodes": ["CO010101"], "frequency": "\\u0000"}'),
    ("/api/v1/open/subscribe", b'{"dataCodes": ["CO010101"], "callbackUrl": 7}'),
    ("/api/v1/open/subscribe", b'{"dataCodes": ["CO010101"], "callbackUrl": "javascript:alert(1)"}'),
    ("/api/v1/open/subscribe", b"[" * 5000 + b"]" * 5000),
    ("/api/v1/open/auth", b'{"app_id": "\\u0000", "timestamp": "1", "nonce": "x", "signature": "y"}'),
    ("/api/v1/open/auth", b'{"app_id": "a", "timestamp": 1e400, "nonce": "x", "signature": "y"}'),
    ("/api/v1/open/auth", b'{"app_id": ["a"], "timestamp": "1", "nonce": "x", "signature": "y"}'),
])
def test_hostile_bodies_get_a_code_never_a_500(cli, path, body):
    r = cli.post(path, body)
    assert 400 <= r.status_code < 500 and r.json()["code"].startswith("E"), (r.status_code, r.content[:200])
    assert not Reading.objects.exists()


def test_hostile_records_are_refused_one_by_one(cli):
    topic = cli.subscribe(["CO010101"]).json()["topic_code"]
    body = ('{"topic_code": "TOPIC", "records": [{"dataCode": "CO010101", "timestamp": "2026-11-23 10:00:00", '
            '"value": 1e999}, {"dataCode": "CO010101", "timestamp": "2026-11-23 10:05:00", "value": "\\u0000"}, '
            '{"dataCode": ["CO010101"], "timestamp": "2026-11-23 10:10:00", "value": 1}, '
            '{"dataCode": "CO010101", "timestamp": "2026-11-23 10:15:00", "value": 3}]}')
    body = body.replace("TOPIC", topic).encode()
    r = cli.post("/api/v1/open/data", body)
    assert r.status_code == 400 and r.json()["accepted"] == 1
    assert [x["index"] for x in r.json()["rejected"]] == [0, 1, 2]


def test_resume_and_replay_from_the_portal(cli, park, other_park, client):
    from apps.integrations.models import CallbackDelivery
    from apps.integrations.services import suspend_platform

    suspend_platform(cli.platform, reason="test", code="E7401")
    foreign, _secret = new_platform(other_park)
    suspend_platform(foreign, reason="test", code="E7401")
    admin = get_user_model().objects.create_user("boss", "b@x.invalid", "pw-Platforms-1")
    set_membership(actor="test", user=admin, park=park, role="admin")
    client.force_login(admin)
    r = client.post("/integrations/platform/", {"action": "resume", "_selected_action": [cli.platform.pk, foreign.pk]})
    assert r.status_code == 302
    assert Platform.objects.get(pk=cli.platform.pk).state == "active"
    assert Platform.objects.get(pk=foreign.pk).state == "suspended"  # another park's: untouched
    assert AuditEntry.objects.filter(action="platform.resume", actor_label="boss").count() == 1
    dead = CallbackDelivery.objects.create(platform=cli.platform, webhook_id="msg_dead", url="http://127.0.0.1:9/",
                                           event="anomaly", payload={}, state="dead", attempts=8)
    r = client.post("/integrations/callbackdelivery/", {"action": "replay", "_selected_action": [dead.pk]})
    assert r.status_code == 302
    dead.refresh_from_db()
    assert (dead.state, dead.attempts) == ("pending", 0)
    assert AuditEntry.objects.filter(action="callback.replay", actor_label="boss").count() == 1


def test_redis_down_answers_503_with_retry_after(cli, settings):
    from tests.fake_http import closed_port_url

    settings.REDIS_URL = closed_port_url().replace("http://", "redis://") + "/0"
    r = cli.subscribe(["CO010101"])
    assert (r.status_code, r.json()["code"]) == (503, "E1018") and int(r["Retry-After"]) > 0
    r = cli.auth()
    assert r.status_code == 503 and "Retry-After" in r
