"""The open API's services (interfaces.md §6): signed authentication, subscriptions, data pushes
(R-7.4.2.2–R-7.4.2.4, R-7.4.3.1, R-7.4.3.2). The views in api.py parse and answer; these decide."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.catalog.models import CollectionMethod, DataItem
from apps.core.errors import CarbonParkError
from apps.ingestion.channels.payloads import Refusal
from apps.ingestion.config import cached_config, current_config
from apps.ingestion.services import IngestResult, ingest_readings, prepare_readings
from apps.integrations import errors, resubmit, services
from apps.integrations import limits as open_limits
from apps.integrations.models import Platform, Subscription
from apps.sources.models import DataSource

NONCE_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
APP_ID_RE = re.compile(r"^[A-Za-z0-9]{1,40}$")
FREQUENCIES = {"realtime": 60, "1min": 60, "5min": 300, "15min": 900, "hourly": 3600, "daily": 86400,
               "monthly": 31 * 86400, "quarterly": 92 * 86400, "yearly": 366 * 86400, "on_event": 366 * 86400}


def sign(secret: bytes | str, app_id: str, timestamp: str, nonce: str) -> str:
    """The signature of interfaces.md §6.2: hex HMAC-SHA256 of ``app_id + timestamp + nonce`` keyed with the
    secret (the same function as docs/examples/open_platform_client.py)."""
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, f"{app_id}{timestamp}{nonce}".encode(), hashlib.sha256).hexdigest()


def whitelisted(platform: Platform, ip: str) -> bool:
    try:
        addr = ipaddress.ip_address((ip or "").split("%")[0])
    except ValueError:
        return False
    return any(addr in ipaddress.ip_network(net) for net in platform.ip_whitelist)


def check_caller(platform: Platform, ip: str) -> None:
    """A suspended app_id (E7406) or a call from outside the whitelist (E7404) is refused."""
    if platform.state != Platform.State.ACTIVE:
        raise CarbonParkError(errors.E7406, reason=platform.state_reason or platform.state)
    if not whitelisted(platform, ip):
        raise CarbonParkError(errors.E7404, ip=ip[:60])


def _string(body: dict, name: str, max_len: int = 128) -> str:
    value = body.get(name)
    if isinstance(value, int) and not isinstance(value, bool) and name == "timestamp":
        value = str(value)
    if not isinstance(value, str) or not value or len(value) > max_len or "\x00" in value:
        raise CarbonParkError(errors.E7409, field=name, name=name, detail="required, a non-empty string")
    return value


def rate_limited(platform: Platform) -> None:
    """429 E7413 with the wait beyond the app_id's limit (R-7.4.1.3); shared by every worker through Redis."""
    limit = open_limits.limit_of(platform)
    wait = open_limits.hit(platform.app_id, limit)
    if wait:
        raise CarbonParkError(errors.E7413, limit=limit, wait=wait)


def authenticate(body, ip: str) -> tuple[str, int]:
    """``/open/auth`` (R-7.4.2.2, R-7.4.3.1): check app_id, whitelist, timestamp window (±5 min), signature,
    then the nonce (never reused); return a bearer token and its lifetime in seconds. Three consecutive failures
    suspend the app_id (R-7.4.3.2)."""
    if not isinstance(body, dict):
        raise CarbonParkError(errors.E7409, field="body", name="body", detail="a JSON object")
    app_id = _string(body, "app_id", 40)
    timestamp = _string(body, "timestamp", 20)
    nonce = _string(body, "nonce", 64)
    signature = _string(body, "signature", 128)
    platform = (Platform.objects.select_related("park").filter(app_id=app_id).first()
                if APP_ID_RE.match(app_id) else None)
    if platform is None:
        raise CarbonParkError(errors.E7414)
    rate_limited(platform)
    if platform.state != Platform.State.ACTIVE:
        raise CarbonParkError(errors.E7406, reason=platform.state_reason or platform.state)
    failure = None
    if not whitelisted(platform, ip):
        failure = CarbonParkError(errors.E7404, ip=ip[:60])
    elif not _in_window(timestamp):
        failure = CarbonParkError(errors.E7403, field="timestamp", window=settings.OPEN_AUTH_WINDOW_S)
    elif not NONCE_RE.match(nonce):
        failure = CarbonParkError(errors.E7409, field="nonce", name="nonce", detail="8–64 characters A–Z a–z 0–9 _ -")
    elif not hmac.compare_digest(sign(services.platform_secret(platform), app_id, timestamp, nonce).encode(),
                                 signature.lower().encode()):
        failure = CarbonParkError(errors.E7401, field="signature")
    elif not open_limits.claim_nonce(app_id, nonce):
        failure = CarbonParkError(errors.E7402, field="nonce")
    if failure is not None:
        services.note_auth_failure(platform, failure.error.code)
        raise failure
    services.note_auth_success(platform)
    return open_limits.issue_token(platform.pk)


def _in_window(timestamp: str) -> bool:
    """Unix time in seconds (or milliseconds, 13 digits), within ±OPEN_AUTH_WINDOW_S of the platform's clock."""
    if not timestamp.isascii() or not timestamp.isdigit():
        return False
    value = int(timestamp)
    if len(timestamp) >= 13:
        value //= 1000
    return abs(time.time() - value) <= settings.OPEN_AUTH_WINDOW_S


def platform_of_token(token: str) -> Platform | None:
    pk = open_limits.token_platform(token) if token.startswith("cpo_") and len(token) < 100 else None
    if pk is None:
        return None
    return Platform.objects.select_related("park").filter(pk=pk).first()


# --- subscriptions ------------------------------------------------------------------------------


def template_of(sub: Subscription, items: list[DataItem], platform: Platform) -> dict:
    """The record layout and code list a topic accepts (R-7.4.2.3), with the published limits."""
    first = items[0]
    return {
        "record": {"sourceId": sub.topic_code, "dataCode": first.code, "timestamp": "2026-11-23 10:05:00.000",
                   "value": 0 if first.data_type == "number" else "", "unit": first.unit, "status": "N",
                   "backfill": False},
        "dataCodes": [{"code": i.code, "name_zh": i.name_zh, "name_en": i.name_en, "dataType": i.data_type,
                       "unit": i.unit} for i in items],
        "maxRecords": settings.OPEN_DATA_MAX_RECORDS,
        "maxBytes": settings.OPEN_DATA_MAX_BYTES,
        "rateLimit": {"requestsPerMinute": open_limits.limit_of(platform)},
        "timeZone": platform.park.time_zone,
    }


def subscribe(platform: Platform, body) -> tuple[Subscription, dict]:
    """``/open/subscribe`` (R-7.4.2.3): the data codes (the standard's or the park's own, and only those a
    certified platform may feed when the item needs proof of source, R-6.3/6.4/6.5), frequency and callback URL →
    a topic code and its data template. The topic is a data source of the park (kind third-party topic)."""
    from apps.sources.services import save_source

    if not isinstance(body, dict):
        raise CarbonParkError(errors.E7409, field="body", name="body", detail="a JSON object")
    codes = body.get("dataCodes")
    if (not isinstance(codes, list) or not 1 <= len(codes) <= 100
            or not all(isinstance(c, str) and len(c) == 8 and c.isascii() and c.isalnum() for c in codes)):
        raise CarbonParkError(errors.E7409, field="dataCodes", name="dataCodes",
                              detail="1–100 eight-character data codes")
    codes = list(dict.fromkeys(codes))
    frequency = body.get("frequency", "")
    if not isinstance(frequency, str) or (frequency and frequency not in FREQUENCIES):
        raise CarbonParkError(errors.E7409, field="frequency", name="frequency", detail=", ".join(FREQUENCIES))
    callback = body.get("callbackUrl") or platform.callback_url
    if not isinstance(callback, str):
        raise CarbonParkError(errors.E7409, field="callbackUrl", name="callbackUrl", detail="a URL")
    callback = services._check_url(callback, "callbackUrl")
    items = {i.code: i for i in DataItem.objects.filter(code__in=codes, is_active=True)
             if i.park_id in (None, platform.park_id)}
    for code in codes:
        if code not in items:
            raise CarbonParkError(errors.E7410, field="dataCodes", code=code)
        if items[code].evidence_required and not platform.certified:
            raise CarbonParkError(errors.E7411, field="dataCodes", code=code)
    ordered = [items[c] for c in codes]
    topic = f"{platform.app_id}.{secrets.token_hex(4)}"
    with transaction.atomic():
        source = save_source(
            actor=platform.audit_label, source_id=topic, park=platform.park, name=f"{platform.name} · {topic}"[:200],
            kind=DataSource.Kind.THIRD_PARTY_TOPIC, protocol=DataSource.Protocol.THIRD_PARTY,
            collection_method=CollectionMethod.THIRD_PARTY, data_items=ordered,
            expected_interval_s=FREQUENCIES.get(frequency or "on_event", 366 * 86400))
        sub = Subscription.objects.create(platform=platform, topic_code=topic, source=source, data_codes=codes,
                                          frequency=frequency, callback_url=callback)
    return sub, template_of(sub, ordered, platform)


# --- data ---------------------------------------------------------------------------------------


@dataclass
class PushResult:
    result: IngestResult
    index_of: list[int]  # ingest's record index → the index in the pushed records
    corrected: list[int] = field(default_factory=list)  # indexes in the pushed records (R-7.4.3.1)

    def response(self, lang: str) -> dict:
        body = self.result.response(lang)
        for r in body["rejected"]:
            if 0 <= r["index"] < len(self.index_of):
                r["index"] = self.index_of[r["index"]]
        body["rejected"].sort(key=lambda r: r["index"])
        if self.corrected:  # stored as revisions: accepted, not duplicates
            body["corrected"] = sorted(self.corrected)
            body["accepted"] += len(self.corrected)
            body["duplicates"] = max(0, body["duplicates"] - len(self.corrected))
        return body


def push(platform: Platform, body, *, idempotency_key: str | None, request_hash: str,
         now: datetime | None = None) -> PushResult:
    """``/open/data`` (R-7.4.2.4, R-7.4.3.1, R-7.4.3.3): records of one topic, each checked against the topic's
    codes and source, stored through ``ingest_readings`` (channel third_party, the platform's park only);
    per-record codes in the answer, rejections kept with their raw content. Same Idempotency-Key and body:
    stored once. A different value re-pushed within 5 min is a correction (a revision, listed under
    ``corrected``), later refused (E7422); ``backfill: true`` records only within 24 h of the platform's
    recovery (E7421). See apps/integrations/resubmit.py."""
    now = now or timezone.now()
    if not isinstance(body, dict):
        raise CarbonParkError(errors.E7409, field="body", name="body", detail="a JSON object {topic_code, records}")
    topic = body.get("topic_code")
    if not isinstance(topic, str) or not topic or len(topic) > 64 or "\x00" in topic:
        raise CarbonParkError(errors.E7409, field="topic_code", name="topic_code", detail="required, a string")
    records = body.get("records")
    if not isinstance(records, list) or not records:
        raise CarbonParkError(errors.E7409, field="records", name="records", detail="a non-empty array of records")
    if len(records) > settings.OPEN_DATA_MAX_RECORDS:
        from apps.core import errors as core_errors

        raise CarbonParkError(core_errors.E1003, limit=settings.OPEN_DATA_MAX_RECORDS, count=len(records))
    sub = Subscription.objects.filter(topic_code=topic, platform=platform).first()
    if sub is None:
        raise CarbonParkError(errors.E7407, field="topic_code", topic=topic[:64])
    codes = set(sub.data_codes)
    certified_only = set() if platform.certified else set(
        DataItem.objects.filter(code__in=codes, evidence_required=True).values_list("code", flat=True))
    kept, index_of, refused, refused_at = [], [], [], []
    backfill_error = False
    for i, record in enumerate(records):
        error = None
        if isinstance(record, dict):
            if record.get("backfill") is True and backfill_error is False:
                backfill_error = resubmit.backfill_refusal(platform, now)
            source = record.get("sourceId", topic)
            code = record.get("dataCode")
            if source != topic:
                error = (errors.E7412, {"source": str(source)[:64], "topic": topic})
            elif code is not None and (type(code) is not str or code not in codes):
                error = (errors.E7408, {"code": str(code)[:16], "codes": ",".join(sub.data_codes)})
            elif code in certified_only or (code is None and len(codes) == 1 and codes <= certified_only):
                error = (errors.E7411, {"code": code or next(iter(codes))})
            elif record.get("backfill") is True and backfill_error:
                error = backfill_error
            elif "sourceId" not in record:
                record["sourceId"] = topic  # the body's own dict: no copy per record
        if error:
            refused.append(Refusal(_raw(record), error[0], error[1], topic, str(record.get("dataCode") or "")[:8]))
            refused_at.append(i)
        else:
            kept.append(record)
            index_of.append(i)
    cfg = cached_config() or current_config()
    prepared = prepare_readings(kept, cfg, parks=[platform.park_id], now=now, refused=tuple(refused))
    again = resubmit.find(prepared.rows, now)
    if again.late:  # repeats with another value after the correction window: refused, the rest prepared again
        late = [(j, k) for j, k in enumerate(kept) if j in again.late]
        for j, record in late:
            code, params = resubmit.late_refusal(again.late[j])
            refused.append(Refusal(_raw(record), code, params, topic, str(record.get("dataCode") or "")[:8]))
            refused_at.append(index_of[j])
        keep = [j for j in range(len(kept)) if j not in again.late]
        kept, index_of = [kept[j] for j in keep], [index_of[j] for j in keep]
        position = {old: new for new, old in enumerate(keep)}
        prepared = prepare_readings(kept, cfg, parks=[platform.park_id], now=now, refused=tuple(refused))
        for r in again.corrections:
            r.index = position[r.index]
    with transaction.atomic():
        result = ingest_readings(None, channel="third_party", actor=platform.audit_label,
                                 idempotency_key=idempotency_key, request_hash=request_hash, prepared=prepared)
        corrected = []
        if again.corrections and not result.replayed:
            resubmit.apply(platform, again.corrections, now)
            corrected = [index_of[r.index] for r in again.corrections]
    return PushResult(result, index_of + refused_at, corrected)


def _raw(record) -> str:
    import json

    try:
        return json.dumps(record, ensure_ascii=False, default=str)[:20000]
    except (TypeError, ValueError, RecursionError):
        return repr(record)[:20000]
