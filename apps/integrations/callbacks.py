"""Feedback to third parties (R-7.4.4.3): anomalies found in a platform's data, by the rule library at ingest
(flagged, warned) and by the post-storage checks (apps/quality/postchecks), tagged with the source platform and
the anomaly type and posted to its callback URL, signed per Standard Webhooks; retried with back-off that honours
Retry-After, logged per attempt, kept as dead letters after CALLBACK_MAX_ATTEMPTS, replayed from the portal."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.core.services import record_change
from apps.integrations import outbound, services
from apps.integrations.models import CallbackDelivery, Platform

LOOKBACK = "2 days"  # anomalies older than this when first seen are not notified (the platform has moved on)


def webhook_signature(secret: bytes, msg_id: str, timestamp: str, body: bytes) -> str:
    """Standard Webhooks: ``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body`` keyed with the platform's secret
    (its UTF-8 bytes)."""
    mac = hmac.new(secret, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


# One statement per source of anomalies: every anomaly of a subscribed topic not notified yet becomes a pending
# delivery (the unique webhook id makes a re-run add nothing, and a late-committing row is picked up next time).
_FROM_POSTCHECKS = f"""
INSERT INTO integrations_callbackdelivery (platform_id, webhook_id, url, event, payload, state, attempts, last_error,
                                           log, next_at, created_at)
SELECT s.platform_id, 'msg_post_' || h.id, coalesce(nullif(s.callback_url, ''), p.callback_url), 'anomaly',
       jsonb_build_object('type', 'anomaly', 'stage', 'post_check', 'platform', p.app_id, 'topic_code', s.topic_code,
                          'sourceId', s.topic_code, 'dataCode', i.code,
                          'timestamp', to_char(h.ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                          'value', h.value, 'anomalyType', h.kind, 'severity', h.severity, 'reason', h.reason),
       'pending', 0, '', '[]'::jsonb, now(), now()
FROM integrations_subscription s
JOIN integrations_platform p ON p.id = s.platform_id
JOIN quality_posthit h ON h.source_id = s.source_id
JOIN catalog_dataitem i ON i.id = h.data_item_id
WHERE h.checked_at > now() - interval '{LOOKBACK}' AND coalesce(nullif(s.callback_url, ''), p.callback_url) <> ''
  AND NOT EXISTS (SELECT 1 FROM integrations_callbackdelivery d WHERE d.webhook_id = 'msg_post_' || h.id)
ON CONFLICT (webhook_id) DO NOTHING
"""

_FROM_INGEST = f"""
INSERT INTO integrations_callbackdelivery (platform_id, webhook_id, url, event, payload, state, attempts, last_error,
                                           log, next_at, created_at)
SELECT s.platform_id, 'msg_ingest_' || e.id, coalesce(nullif(s.callback_url, ''), p.callback_url), 'anomaly',
       jsonb_build_object('type', 'anomaly', 'stage', 'ingest', 'platform', p.app_id, 'topic_code', s.topic_code,
                          'sourceId', e.source_ref, 'dataCode', e.data_code,
                          'timestamp', to_char(e.ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                          'value', e.value_repr, 'anomalyType', e.code, 'severity', e.kind,
                          'message_zh', e.message_zh, 'message_en', e.message_en),
       'pending', 0, '', '[]'::jsonb, now(), now()
FROM integrations_subscription s
JOIN integrations_platform p ON p.id = s.platform_id
JOIN ingestion_ingestbatch b ON b.channel = 'third_party' AND b.actor_label = 'platform:' || p.app_id
     AND b.received_at > now() - interval '{LOOKBACK}'
JOIN ingestion_validationevent e ON e.batch_id = b.id AND e.source_ref = s.topic_code
WHERE e.kind IN ('flagged', 'warned') AND coalesce(nullif(s.callback_url, ''), p.callback_url) <> ''
  AND NOT EXISTS (SELECT 1 FROM integrations_callbackdelivery d WHERE d.webhook_id = 'msg_ingest_' || e.id)
ON CONFLICT (webhook_id) DO NOTHING
"""


def collect_anomalies() -> int:
    """Queue a notice for every anomaly of a platform's data not notified yet (R-7.4.4.3); set-based."""
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(_FROM_POSTCHECKS)
        n = cur.rowcount
        cur.execute(_FROM_INGEST)
        return n + cur.rowcount


def due_ids(limit: int = 1000) -> list[int]:
    return list(CallbackDelivery.objects.filter(state=CallbackDelivery.State.PENDING, next_at__lte=timezone.now())
                .order_by("next_at").values_list("pk", flat=True)[:limit])


def _backoff(attempts: int, retry_after: float | None) -> float:
    delay = min(settings.CALLBACK_BACKOFF_S * 2 ** max(0, attempts - 1), 3600.0)
    return min(max(delay, retry_after or 0.0), 86400.0)


def _url_now(platform: Platform, url: str) -> str:
    """While the primary is down (R-7.4.4.2), an address under the base URL goes to the backup URL instead."""
    if platform.use_backup and platform.backup_url and url.startswith(platform.base_url.rstrip("/")):
        return platform.backup_url.rstrip("/") + url[len(platform.base_url.rstrip("/")):]
    return url


def deliver(delivery_id: int) -> str:
    """Post one notice (R-7.4.4.3). The row is leased first (no other worker sends it meanwhile: delivered once),
    then sent outside any transaction; its outcome is logged. Returns the state after the attempt ("skipped" when
    it was not due or is being sent elsewhere)."""
    now = timezone.now()
    lease = timedelta(seconds=sum(outbound.timeouts()) + 30)
    with transaction.atomic():
        row = (CallbackDelivery.objects.select_for_update(skip_locked=True).select_related("platform")
               .filter(pk=delivery_id, state=CallbackDelivery.State.PENDING, next_at__lte=now).first())
        if row is None:
            return "skipped"
        CallbackDelivery.objects.filter(pk=row.pk).update(next_at=now + lease)
    platform = row.platform
    body = json.dumps(row.payload, ensure_ascii=False, separators=(",", ":")).encode()
    stamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", "webhook-id": row.webhook_id, "webhook-timestamp": stamp,
               "webhook-signature": webhook_signature(services.platform_secret(platform), row.webhook_id, stamp,
                                                      body),
               "User-Agent": "CarbonPark-Webhooks/1"}
    url = _url_now(platform, row.url)
    answer = outbound.call("POST", url, body=body, headers=headers)
    attempts = row.attempts + 1
    entry = {"at": timezone.now().isoformat(), "url": url, "status": answer.status, "ms": answer.ms,
             "error": answer.error[:200]}
    fields = {"attempts": attempts, "last_status": answer.status, "last_error": answer.error[:300],
              "log": [*row.log[-49:], entry]}
    if answer.ok:
        fields |= {"state": CallbackDelivery.State.DELIVERED, "delivered_at": timezone.now(), "next_at": None}
    elif attempts >= settings.CALLBACK_MAX_ATTEMPTS:
        fields |= {"state": CallbackDelivery.State.DEAD, "next_at": None}
    else:
        fields["next_at"] = timezone.now() + timedelta(seconds=_backoff(attempts, answer.retry_after))
    CallbackDelivery.objects.filter(pk=row.pk).update(**fields)
    return fields.get("state", CallbackDelivery.State.PENDING)


@transaction.atomic
def replay(*, actor, deliveries) -> int:
    """Send dead letters (or any notices) again from the start (R-7.4.4.3); audited per platform's park."""
    from apps.accounts import access
    from apps.accounts.access import Action

    ids = [d.pk for d in deliveries if access.check(actor, Action.MANAGE, d.platform.park_id)]
    n = CallbackDelivery.objects.filter(pk__in=ids).exclude(state=CallbackDelivery.State.PENDING).update(
        state=CallbackDelivery.State.PENDING, attempts=0, next_at=timezone.now(), delivered_at=None)
    for d in deliveries:
        if d.pk in ids:
            record_change(actor=actor, action="callback.replay", obj=d, before={"state": d.state},
                          after={"state": "pending"}, park_code=d.platform.park.code)
    return n
