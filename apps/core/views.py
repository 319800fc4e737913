"""Health and the published error-code table."""

from django.db import connection
from django.http import JsonResponse
from django.utils.translation import get_language
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core import errors, heartbeat
from apps.core.errors import error_table

_REDIS: dict = {}


def healthz(request):
    """Liveness and readiness (R-5.2.3.1): the database and Redis answer, and every expected process that
    ingests or schedules (MQTT consumer, HJ 212 listener, Celery worker and beat) beats and keeps up.
    503 when any of them is down, stalled or missing; docs/operations-health.md."""
    checks = {}
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - report any failure as not ready
        checks["database"] = f"error: {exc.__class__.__name__}"
    components = {}
    try:
        import redis
        from django.conf import settings

        client = _REDIS.get(settings.REDIS_URL)
        if client is None:  # one client (and connection pool) per process and URL, not a new connection per probe
            client = _REDIS[settings.REDIS_URL] = redis.Redis.from_url(
                settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
        client.ping()
        checks["redis"] = "ok"
        components = heartbeat.evaluate(heartbeat.read(client))
    except Exception as exc:  # noqa: BLE001
        checks["redis"] = f"error: {exc.__class__.__name__}"
    ok = all(v == "ok" for v in checks.values()) and all(
        c["status"] == "ok" for c in components.values() if c["expected"])
    body = {"status": "ok" if ok else "degraded", "checks": checks}
    if components:
        body["components"] = components
    return JsonResponse(body, status=200 if ok else 503)


class ErrorCodesView(APIView):
    """The published error-code table (docs/error-codes.md is generated from the same source)."""

    permission_classes = [AllowAny]
    authentication_classes = []
    access_rules = {"GET": None}  # public: no park data (apps.accounts.permissions)

    @extend_schema(operation_id="error_codes", responses=inline_serializer("ErrorCode", {
        "code": serializers.CharField(), "http_status": serializers.IntegerField(),
        "message": serializers.CharField(), "message_zh": serializers.CharField(),
        "message_en": serializers.CharField(), "clause": serializers.CharField()}, many=True))
    def get(self, request):
        lang = get_language() or "zh-hans"
        return Response([{"code": e.code, "http_status": e.http_status,
                          "message": e.message(lang), "message_zh": e.zh, "message_en": e.en, "clause": e.clause}
                         for e in error_table()])


@csrf_exempt
def api_not_found(request, *args, **kwargs):
    """Any /api/ path no endpoint serves: a JSON 404 with its code (interfaces.md §3), for every method,
    never the portal's login page (the admin's catch-all would redirect) nor a CSRF page."""
    err = errors.E1010
    return JsonResponse({"code": err.code, "message": err.message(detail=request.path)}, status=err.http_status,
                        json_dumps_params={"ensure_ascii": False})
