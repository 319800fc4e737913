"""Data sources: list, read, register and change (interfaces.md §3 /api/v1/sources/)."""

from django.core.exceptions import ValidationError
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError as DRFValidationError
from rest_framework.response import Response
from rest_framework.utils import model_meta

from apps.accounts import access
from apps.accounts.access import Action
from apps.accounts.api import ScopedSlugField
from apps.accounts.models import Park
from apps.catalog.models import DataItem
from apps.core.parsers import ObjectField
from apps.sources.models import Command, DataSource
from apps.sources.selectors import commands_of, sources_for
from apps.sources.services import save_source
from apps.sources.services.commands import create_command

# interfaces.md names fields in camelCase. The snake_case names of release 1.0 stay readable for one release
# (docs/api-field-names.md): accepted on input, and answered as deprecated read-only duplicates.
SOURCE_LEGACY_NAMES = {"collection_method": "collectionMethod", "expected_interval_s": "expectedIntervalSeconds",
                       "evidence_required": "evidenceRequired", "serial_number": "serialNumber"}
COMMAND_LEGACY_NAMES = {"created_by": "createdBy", "created_at": "createdAt", "expires_at": "expiresAt",
                        "published_at": "publishedAt", "acknowledged_at": "acknowledgedAt"}


def _deprecated(field: serializers.Field, new: str) -> serializers.Field:
    field.help_text = f"Deprecated alias of {new}, answered until release 1.2 (docs/api-field-names.md)."
    return field


def _from_model(model, name: str) -> serializers.Field:
    """The field ModelSerializer would build for the model field ``name`` (its validators, choices, limits
    and label), under a camelCase name."""
    info = model_meta.get_field_info(model)
    field_class, kwargs = serializers.ModelSerializer().build_standard_field(name, info.fields[name])
    return field_class(source=name, **kwargs)


class LegacyNamesMixin:
    """Accepts the old snake_case names on input (renamed to the camelCase ones; both at once must agree) and
    answers them beside the camelCase ones, read-only, for one release."""

    legacy_names: dict[str, str] = {}

    def to_internal_value(self, data):
        if hasattr(data, "keys") and any(old in data for old in self.legacy_names):
            data = data.copy() if hasattr(data, "copy") else dict(data)
            clashes = {}
            for old, new in self.legacy_names.items():
                if old not in data:
                    continue
                value = data.pop(old)
                if hasattr(data, "setlist") and hasattr(value, "__iter__") and not isinstance(value, str):
                    value = value[-1] if value else ""
                if new in data and data[new] != value:
                    clashes[old] = [f"{old} is the old name of {new}: send {new} only"]
                data[new] = value
            if clashes:
                raise serializers.ValidationError(clashes)
        return super().to_internal_value(data)


@extend_schema_serializer(deprecate_fields=list(SOURCE_LEGACY_NAMES))
class DataSourceSerializer(LegacyNamesMixin, serializers.ModelSerializer):
    legacy_names = SOURCE_LEGACY_NAMES
    sourceId = serializers.CharField(source="source_id", max_length=64)
    park = ScopedSlugField(Park, slug_field="code")
    dataCodes = ScopedSlugField(DataItem, source="data_items", slug_field="code", many=True, required=False)
    settings = ObjectField(required=False, help_text="protocol settings, a JSON object")
    collectionMethod = _from_model(DataSource, "collection_method")
    expectedIntervalSeconds = _from_model(DataSource, "expected_interval_s")
    evidenceRequired = _from_model(DataSource, "evidence_required")
    serialNumber = _from_model(DataSource, "serial_number")
    collection_method = _deprecated(serializers.CharField(read_only=True), "collectionMethod")
    expected_interval_s = _deprecated(serializers.IntegerField(read_only=True), "expectedIntervalSeconds")
    evidence_required = _deprecated(serializers.BooleanField(read_only=True), "evidenceRequired")
    serial_number = _deprecated(serializers.CharField(read_only=True), "serialNumber")

    class Meta:
        model = DataSource
        fields = ["sourceId", "park", "name", "kind", "protocol", "dataCodes", "collectionMethod",
                  "expectedIntervalSeconds", "enabled", "evidenceRequired", "manufacturer", "model", "serialNumber",
                  "location", "settings", *SOURCE_LEGACY_NAMES]


@extend_schema_serializer(deprecate_fields=list(COMMAND_LEGACY_NAMES))
class CommandSerializer(serializers.ModelSerializer):
    cmdId = serializers.CharField(source="cmd_id", read_only=True)
    type = serializers.ChoiceField(choices=[c for c in Command.Type.choices if c[0] != Command.Type.ROTATE_KEY])
    params = ObjectField(required=False, help_text="the command's parameters, a JSON object (interfaces.md §2)")
    expiresIn = serializers.IntegerField(write_only=True, required=False, min_value=10, max_value=7 * 86400,
                                         help_text="seconds until the command expires (default 3600)")
    createdBy = serializers.CharField(source="created_by", read_only=True)
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)
    expiresAt = serializers.DateTimeField(source="expires_at", read_only=True)
    publishedAt = serializers.DateTimeField(source="published_at", read_only=True, allow_null=True)
    acknowledgedAt = serializers.DateTimeField(source="acknowledged_at", read_only=True, allow_null=True)
    created_by = _deprecated(serializers.CharField(read_only=True), "createdBy")
    created_at = _deprecated(serializers.DateTimeField(read_only=True), "createdAt")
    expires_at = _deprecated(serializers.DateTimeField(read_only=True), "expiresAt")
    published_at = _deprecated(serializers.DateTimeField(read_only=True, allow_null=True), "publishedAt")
    acknowledged_at = _deprecated(serializers.DateTimeField(read_only=True, allow_null=True), "acknowledgedAt")

    class Meta:
        model = Command
        fields = ["cmdId", "type", "params", "state", "createdBy", "createdAt", "expiresAt", "expiresIn",
                  "publishedAt", "acknowledgedAt", "result", "message", *COMMAND_LEGACY_NAMES]
        read_only_fields = ["state", "result", "message"]


class DataSourceViewSet(viewsets.ModelViewSet):
    """Sources of the caller's parks. Reading them needs ``view``; registering, changing and sending commands
    need ``manage`` in the source's park, and in the park it moves to (docs/roles.md). A source of a park the
    caller cannot view answers 404, like one that does not exist."""

    serializer_class = DataSourceSerializer
    lookup_field = "source_id"
    lookup_url_kwarg = "sourceId"
    lookup_value_regex = r"[A-Za-z0-9._:-]{1,64}"
    http_method_names = ["get", "post", "patch", "head", "options"]
    access_rules = {"list": Action.VIEW, "retrieve": Action.VIEW, "create": Action.MANAGE,
                    "partial_update": Action.MANAGE, "commands": Action.VIEW, "send_command": Action.MANAGE}

    def get_queryset(self):
        return sources_for(self.request.user, Action.VIEW, park_code=self.request.query_params.get("park"))

    def _save(self, serializer, source=None):
        data = dict(serializer.validated_data)
        park = data.get("park") or source.park
        # the park it is in now and the park it would be in after (a PATCH {"park": …} is a move)
        access.require_move(self.request.user, Action.MANAGE, source.park if source else park, park)
        items = data.pop("data_items", None)
        try:
            serializer.instance = save_source(actor=self.request.user, source=source, data_items=items, **data)
        except ValidationError as exc:
            raise DRFValidationError(exc.message_dict) from exc

    def perform_create(self, serializer):
        self._save(serializer)

    def perform_update(self, serializer):
        self._save(serializer, serializer.instance)

    @extend_schema(responses=CommandSerializer(many=True))
    @action(detail=True, methods=["get"], url_path="commands")
    def commands(self, request, sourceId=None):
        """Downlink commands of a source (R-5.3.1, interfaces.md §2) with their delivery state (pending →
        delivered → acknowledged / failed / expired), newest first."""
        source = self.get_object()
        # paginated like every list of the API ({count, next, previous, results})
        page = self.paginate_queryset(commands_of(source, request.user))
        return self.get_paginated_response(CommandSerializer(page, many=True).data)

    @extend_schema(request=CommandSerializer, responses={201: CommandSerializer})
    @commands.mapping.post
    def send_command(self, request, sourceId=None):
        """Send a downlink command to a source (R-5.3.1, interfaces.md §2); needs ``manage`` in its park."""
        from datetime import timedelta

        source = self.get_object()
        ser = CommandSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        data = ser.validated_data
        try:
            cmd = create_command(actor=request.user, source=source, type=data["type"], params=data.get("params") or {},
                                 ttl=timedelta(seconds=data.get("expiresIn", 3600)))
        except ValidationError as exc:
            raise DRFValidationError(exc.message_dict) from exc
        return Response(CommandSerializer(cmd).data, status=status.HTTP_201_CREATED)
