"""The open API of interfaces.md §6 (/api/v1/open/auth, /subscribe, /data) and platform registration over the
API (/api/v1/platforms): thin adapters over apps.integrations.open and .services."""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import get_language
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer, extend_schema, inline_serializer
from rest_framework import authentication, serializers
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts import access
from apps.accounts.access import Action
from apps.accounts.auth_events import client_ip
from apps.core import errors as core_errors
from apps.core.api import RETRY_AFTER_S
from apps.core.errors import CarbonParkError
from apps.core.openapi import ErrorSerializer, error_response
from apps.ingestion.api import RECORD_SCHEMA, check_idempotency_key
from apps.ingestion.jsonbody import loads
from apps.ingestion.services import request_fingerprint
from apps.integrations import errors, open, services
from apps.integrations.models import Platform


class PlatformPrincipal:
    """request.user for a platform's bearer token: authenticated, of its park, no portal or API rights."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    token = None
    pk = None

    def __init__(self, platform: Platform):
        self.platform = platform
        self.audit_label = platform.audit_label

    def get_username(self) -> str:
        return self.audit_label

    def __str__(self):
        return self.audit_label


class OpenTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <token>`` from /open/auth (R-7.4.2.2); the app_id must be active and the call come
    from its whitelist (E7405, E7406, E7404)."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        parts = header.split()
        if len(parts) != 2 or parts[0].lower() != "bearer":
            raise CarbonParkError(errors.E7405)
        platform = open.platform_of_token(parts[1])
        if platform is None:
            raise CarbonParkError(errors.E7405)
        open.check_caller(platform, client_ip(request))
        return PlatformPrincipal(platform), None

    def authenticate_header(self, request):
        return self.keyword


class IsPlatform(BasePermission):
    def has_permission(self, request, view):
        return isinstance(request.user, PlatformPrincipal)


def _body(request, limit: int):
    length = request.META.get("CONTENT_LENGTH") or "0"
    if not length.isdigit() or int(length) > limit:
        raise CarbonParkError(core_errors.E1004, limit=limit)
    body = request.body
    if len(body) > limit:
        raise CarbonParkError(core_errors.E1004, limit=limit)
    try:
        return loads(body), body
    except (ValueError, RecursionError) as exc:
        raise CarbonParkError(core_errors.E1001, detail=str(exc)[:200]) from None


class OpenView(APIView):
    access_rules = {"POST": None}  # not a park right: a platform's own credentials (apps.accounts.permissions)

    def perform_content_negotiation(self, request, force=False):
        renderer = self.get_renderers()[0]
        return renderer, renderer.media_type

    def handle_exception(self, exc):
        import redis

        if isinstance(exc, redis.RedisError):
            # Redis keeps nonces, tokens and the rate limit: while it is down nothing is checked nor stored (503)
            exc = CarbonParkError(core_errors.E1018, retry_after=RETRY_AFTER_S)
        response = super().handle_exception(exc)
        if isinstance(exc, CarbonParkError) and exc.error is errors.E7413:
            response["Retry-After"] = str(exc.params["wait"])
        elif isinstance(exc, CarbonParkError) and exc.error is core_errors.E1018:
            response["Retry-After"] = str(RETRY_AFTER_S)
        return response


class OpenAuthView(OpenView):
    """Authenticate a platform (interfaces.md §6.2): HMAC-SHA256 of app_id + timestamp + nonce with the secret;
    timestamp in Unix seconds within ±5 min; each nonce once. Answers a bearer token and its lifetime."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="open_auth", tags=["open"],
        request=inline_serializer("OpenAuthRequest", {
            "app_id": serializers.CharField(), "timestamp": serializers.CharField(help_text="Unix time, seconds"),
            "nonce": serializers.CharField(help_text="8–64 characters A–Z a–z 0–9 _ -, never reused"),
            "signature": serializers.CharField(help_text="hex HMAC-SHA256(secret, app_id + timestamp + nonce)")}),
        responses={200: inline_serializer("OpenAuthAnswer", {"token": serializers.CharField(),
                                                             "expiresIn": serializers.IntegerField()}),
                   400: error_response("E7409 a field missing or malformed"),
                   401: error_response("E7401 bad signature, E7402 nonce reused, E7403 timestamp outside the "
                                       "window, E7414 unknown app_id"),
                   403: error_response("E7404 outside the IP whitelist, E7406 app_id suspended"),
                   429: error_response("E7413 rate limit exceeded (Retry-After)")},
    )
    def post(self, request):
        body, _raw = _body(request, 64 * 1024)
        token, ttl = open.authenticate(body, client_ip(request))
        return Response({"token": token, "expiresIn": ttl})


class PlatformView(OpenView):
    authentication_classes = [OpenTokenAuthentication]
    permission_classes = [IsPlatform]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        open.rate_limited(request.user.platform)


class OpenSubscribeView(PlatformView):
    """Subscribe to data codes (interfaces.md §6.3): answers the topic code and the template of its records."""

    @extend_schema(
        operation_id="open_subscribe", tags=["open"],
        request=inline_serializer("OpenSubscribeRequest", {
            "dataCodes": serializers.ListField(child=serializers.CharField(), help_text="Appendix A codes"),
            "frequency": serializers.ChoiceField(choices=list(open.FREQUENCIES), required=False),
            "callbackUrl": serializers.URLField(required=False,
                                                help_text="where validation results are posted (Standard "
                                                          "Webhooks); the registered one when omitted")}),
        responses={200: inline_serializer("OpenSubscribeAnswer", {
            "topic_code": serializers.CharField(),
            "template": serializers.JSONField(help_text="record layout, accepted codes, limits")}),
            400: error_response("E7409, E7410, E7419"), 401: error_response("E7405 token invalid or expired"),
            403: error_response("E7404, E7406, E7411 item needs a certified platform"),
            429: error_response("E7413 rate limit exceeded (Retry-After)")},
    )
    def post(self, request):
        body, _raw = _body(request, 64 * 1024)
        sub, template = open.subscribe(request.user.platform, body)
        return Response({"topic_code": sub.topic_code, "template": template})


# The ingest answer plus the indexes of the records taken as corrections of earlier pushes (R-7.4.3.1).
OpenDataAnswer = inline_serializer("OpenDataAnswer", {
    "accepted": serializers.IntegerField(),
    "duplicates": serializers.IntegerField(),
    "rejected": inline_serializer("OpenRejectedRecord", {
        "index": serializers.IntegerField(), "code": serializers.CharField(),
        "message": serializers.CharField(), "field": serializers.CharField(required=False)}, many=True),
    "corrected": serializers.ListField(child=serializers.IntegerField(), required=False,
                                       help_text="records re-pushed within 5 min with another value: stored as "
                                                 "corrections (revisions), counted as accepted"),
})


class OpenDataView(PlatformView):
    """Push records of a topic (interfaces.md §6.4): 200 when all were accepted, 400 with per-record codes
    (valid records are still stored), 500 on a platform failure. Same Idempotency-Key and body: stored once.
    Ten failed pushes within an hour suspend the app_id (R-7.4.3.2)."""

    @extend_schema(
        operation_id="open_data", tags=["open"],
        request={"application/json": {"type": "object", "required": ["topic_code", "records"], "properties": {
            "topic_code": {"type": "string"},
            "records": {"type": "array", "items": RECORD_SCHEMA, "maxItems": 10000,
                        "description": "sourceId may be omitted (it is the topic code)"}}}},
        parameters=[OpenApiParameter("Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER,
                                     description="Same key and body → same answer, stored once.")],
        responses={200: OpenDataAnswer,
                   400: PolymorphicProxySerializer("OpenDataAnswerOrError", [OpenDataAnswer, ErrorSerializer],
                                                   resource_type_field_name=None),
                   401: error_response("E7405 token invalid or expired"),
                   403: error_response("E7404, E7406"), 404: error_response("E7407 unknown topic_code"),
                   409: error_response("E1005 Idempotency-Key reused with another body"),
                   413: error_response("E1004 body too large"),
                   429: error_response("E7413 rate limit exceeded (Retry-After)"),
                   500: error_response("E1017 platform failure; retry with the same Idempotency-Key")},
    )
    def post(self, request):
        platform = request.user.platform
        try:
            body, raw = _body(request, settings.OPEN_DATA_MAX_BYTES)
            key = check_idempotency_key(request)
            pushed = open.push(platform, body, idempotency_key=key, request_hash=request_fingerprint(raw))
        except CarbonParkError as exc:
            if 400 <= exc.http_status < 500:
                services.note_push_failure(platform, exc.error.code)
            raise
        status = pushed.result.http_status
        if status != 200 and not pushed.result.replayed:
            services.note_push_failure(platform, pushed.result.rejected[0]["code"])
        response = Response(pushed.response(get_language() or "zh-hans"), status=status)
        if pushed.result.replayed:
            response["Idempotent-Replayed"] = "true"
        return response


# --- registration over the API (R-7.4.2.1) -------------------------------------------------------


class PlatformSerializer(serializers.ModelSerializer):
    park = serializers.SlugRelatedField(slug_field="code", read_only=True)

    class Meta:
        model = Platform
        fields = ["id", "park", "name", "uscc", "base_url", "backup_url", "ip_whitelist", "alert_email",
                  "alert_phone", "callback_url", "certified", "rate_limit", "app_id", "state", "state_reason",
                  "use_backup", "last_probe_at", "last_probe_ms", "backup_probe_ok", "backup_probe_ms",
                  "recovered_at", "created_at"]
        read_only_fields = ["app_id", "state", "state_reason", "use_backup", "last_probe_at", "last_probe_ms",
                            "backup_probe_ok", "backup_probe_ms", "recovered_at", "created_at"]


class PlatformWrite(serializers.Serializer):
    park = serializers.CharField(help_text="park code")
    name = serializers.CharField(max_length=200)
    uscc = serializers.CharField(max_length=40)
    base_url = serializers.CharField(max_length=500)
    backup_url = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    ip_whitelist = serializers.ListField(child=serializers.CharField(max_length=64), max_length=100)
    alert_email = serializers.CharField(max_length=254)
    alert_phone = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
    callback_url = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    certified = serializers.BooleanField(required=False, default=False)
    rate_limit = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=100000,
                                          default=None)


class PlatformsView(APIView):
    """Third-party platforms of the caller's parks: list (view) and register (manage). The secret is in the
    registration's answer only."""

    access_model = Platform
    access_rules = {"GET": Action.VIEW, "POST": Action.MANAGE}

    @extend_schema(operation_id="platforms_list", tags=["platforms"], responses=PlatformSerializer(many=True))
    def get(self, request):
        qs = access.restrict(Platform.objects.select_related("park"), request.user, Action.VIEW)
        return Response(PlatformSerializer(qs.order_by("pk")[:1000], many=True).data)

    @extend_schema(operation_id="platforms_register", tags=["platforms"], request=PlatformWrite,
                   responses={201: inline_serializer("PlatformRegistered", {
                       "platform": PlatformSerializer(), "secret": serializers.CharField(
                           help_text="shown this once; keep it safe")}),
                       400: error_response("E7415 bad USCC, E7416 bad whitelist entry, E7419 bad URL, E1011")})
    def post(self, request):
        data = PlatformWrite(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        park = access.parks(request.user, Action.MANAGE).filter(code=fields.pop("park")).first()
        if park is None:
            raise CarbonParkError(core_errors.E1008, field="park", detail="no such park to manage")
        platform, secret = services.register_platform(actor=request.user, park=park, **fields)
        return Response({"platform": PlatformSerializer(platform).data, "secret": secret}, status=201)


class PlatformResumeView(APIView):
    """Resume a suspended app_id (R-7.4.3.2): a park administrator; audited."""

    access_model = Platform
    access_rules = {"POST": Action.MANAGE}

    @extend_schema(operation_id="platforms_resume", tags=["platforms"],
                   request=inline_serializer("PlatformResume", {"reason": serializers.CharField(required=False)}),
                   responses={200: PlatformSerializer, 404: error_response("E7417")})
    def post(self, request, platform_id: int):
        platform = access.restrict(Platform.objects.select_related("park"), request.user, Action.VIEW).filter(
            pk=platform_id).first()
        if platform is None:
            raise CarbonParkError(errors.E7417, id=platform_id)
        reason = request.data.get("reason", "") if isinstance(request.data, dict) else ""
        if not isinstance(reason, str) or "\x00" in reason:
            raise CarbonParkError(errors.E7409, field="reason", name="reason", detail="a string")
        platform = services.resume_platform(actor=request.user, platform=platform, reason=reason[:500])
        return Response(PlatformSerializer(platform).data)
