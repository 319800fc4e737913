"""Interface health (R-7.4.4.2): each platform's base URL probed on a beat and timed; an outage or an answer slower
than PROBE_SLOW_S (≥ 5 s) raises an alarm in the park and sends an SMS to the platform's alert phone, and calls
under the base URL go to the backup URL until the primary answers well again. The backup URL is probed and timed
too (shown on the platform's page): calls switch to it only while it answers well."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core.services import record_change
from apps.integrations import outbound, sms
from apps.integrations.models import Platform

ALARM_KIND = "integration"
ALARM_CODE = "E7420"


def probe(platform: Platform) -> bool:
    """Probe one platform's primary endpoint; True when healthy."""
    from apps.quality.services import AlarmRaise, close_alarms, raise_alarms

    answer = outbound.call("GET", platform.base_url)
    healthy = _healthy(answer)
    was = platform.last_probe_ok
    what = _what(answer)
    backup = outbound.call("GET", platform.backup_url) if platform.backup_url else None
    backup_ok = backup is not None and _healthy(backup)
    with transaction.atomic():
        now = timezone.now()
        recovered = {"recovered_at": now} if healthy and was is False else {}  # the end of an outage (R-7.4.3.3)
        checked = {"backup_probe_at": now, "backup_probe_ms": backup.ms, "backup_probe_ok": backup_ok} if backup \
            else {"backup_probe_at": None, "backup_probe_ms": None, "backup_probe_ok": None}
        Platform.objects.filter(pk=platform.pk).update(
            last_probe_at=now, last_probe_ms=answer.ms, last_probe_ok=healthy,
            use_backup=(not healthy and backup_ok), **recovered, **checked)
        if not healthy:
            if backup_ok:
                switch_zh, switch_en = "，已切换到备用接口", "; calls switched to the backup URL"
            elif backup is not None:
                switch_zh = f"，备用接口也异常（{_what(backup)}）"
                switch_en = f"; the backup URL is failing too ({_what(backup)})"
            else:
                switch_zh = switch_en = ""
            raise_alarms([AlarmRaise(
                platform.park_id, None, ALARM_KIND, ALARM_CODE,
                f"第三方平台 {platform.name}（{platform.app_id}）接口异常：{what}{switch_zh}",
                f"Third-party platform {platform.name} ({platform.app_id}) endpoint failing: {what}{switch_en}")])
        if healthy != (was is not False):  # a change: down→up or up→down (first probe down counts as a change)
            record_change(actor="integrations.health", action="platform.health", obj=platform,
                          before={"healthy": was}, after={"healthy": healthy, "probe": what},
                          park_code=platform.park.code)
        if healthy and was is False and not Platform.objects.filter(park_id=platform.park_id,
                                                                    last_probe_ok=False).exists():
            close_alarms(park=platform.park_id, kind=ALARM_KIND, code=ALARM_CODE)
    if not healthy and was is not False and platform.alert_phone:
        sms.send_sms(platform.alert_phone,
                     f"【CarbonPark】第三方平台 {platform.name} 接口异常（{what}）"
                     + ("，已切换备用接口。" if backup_ok else "，备用接口也异常。" if backup is not None else "。"))
    return healthy


def _healthy(answer: outbound.Answer) -> bool:
    return answer.status is not None and answer.status < 500 and answer.ms <= settings.PROBE_SLOW_S * 1000


def _what(answer: outbound.Answer) -> str:
    return (f"HTTP {answer.status}" if answer.status else answer.error[:120]) + f", {answer.ms} ms"


def probe_all() -> int:
    """Probe every active platform (the beat's job); the number found failing."""
    failing = 0
    for platform in Platform.objects.select_related("park").filter(state=Platform.State.ACTIVE):
        failing += not probe(platform)
    return failing
