"""SMS alerts (R-7.4.4.2) through a pluggable gateway: SMS_BACKEND names a class with ``send(to, text) -> bool``.
The default, ``HttpSmsGateway``, posts ``{"to": "+86…", "text": "…"}`` as JSON to SMS_GATEWAY_URL with
``Authorization: Bearer SMS_GATEWAY_TOKEN`` (the shape of the common Chinese providers' HTTP APIs behind a thin
relay); any 2xx is sent. No URL configured: nothing is sent (the alarm in the portal stands alone)."""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.utils.module_loading import import_string

from apps.integrations import outbound

log = logging.getLogger(__name__)


class HttpSmsGateway:
    def send(self, to: str, text: str) -> bool:
        if not settings.SMS_GATEWAY_URL or not to:
            return False
        headers = {"Content-Type": "application/json"}
        if settings.SMS_GATEWAY_TOKEN:
            headers["Authorization"] = f"Bearer {settings.SMS_GATEWAY_TOKEN}"
        answer = outbound.call("POST", settings.SMS_GATEWAY_URL, headers=headers,
                               body=json.dumps({"to": to, "text": text}, ensure_ascii=False).encode())
        if not answer.ok:
            log.warning("SMS to %s not sent: %s %s", to, answer.status, answer.error)
        return answer.ok


def send_sms(to: str, text: str) -> bool:
    return import_string(settings.SMS_BACKEND)().send(to, text)
