"""Data sources: list, read, register and change (interfaces.md §3 /api/v1/sources/)."""

from django.core.exceptions import ValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.exceptions import ValidationError as DRFValidationError
from rest_framework.response import Response

from apps.accounts.models import Park
from apps.accounts.selectors import can_manage, parks_for
from apps.catalog.models import DataItem
from apps.sources.models import Command, DataSource
from apps.sources.selectors import sources_for
from apps.sources.services import save_source
from apps.sources.services.commands import create_command


class DataSourceSerializer(serializers.ModelSerializer):
    sourceId = serializers.CharField(source="source_id", max_length=64)
    park = serializers.SlugRelatedField(slug_field="code", queryset=Park.objects.all())
    dataCodes = serializers.SlugRelatedField(source="data_items", slug_field="code", many=True,
                                             queryset=DataItem.objects.all(), required=False)

    class Meta:
        model = DataSource
        fields = ["sourceId", "park", "name", "kind", "protocol", "dataCodes", "collection_method",
                  "expected_interval_s", "enabled", "evidence_required", "manufacturer", "model", "serial_number",
                  "location", "settings"]

    def validate_park(self, park):
        if park not in parks_for(self.context["request"].user):
            raise serializers.ValidationError("not one of your parks")
        return park


class CommandSerializer(serializers.ModelSerializer):
    cmdId = serializers.CharField(source="cmd_id", read_only=True)
    type = serializers.ChoiceField(choices=[c for c in Command.Type.choices if c[0] != Command.Type.ROTATE_KEY])
    expiresIn = serializers.IntegerField(write_only=True, required=False, min_value=10, max_value=7 * 86400,
                                         help_text="seconds until the command expires (default 3600)")

    class Meta:
        model = Command
        fields = ["cmdId", "type", "params", "state", "created_by", "created_at", "expires_at", "expiresIn",
                  "published_at", "acknowledged_at", "result", "message"]
        read_only_fields = ["state", "created_by", "created_at", "expires_at", "published_at", "acknowledged_at",
                            "result", "message"]


class DataSourceViewSet(viewsets.ModelViewSet):
    serializer_class = DataSourceSerializer
    lookup_field = "source_id"
    lookup_url_kwarg = "sourceId"
    lookup_value_regex = r"[A-Za-z0-9._:-]{1,64}"
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        qs = sources_for(self.request.user)
        park = self.request.query_params.get("park")
        return qs.filter(park__code=park) if park else qs

    def _save(self, serializer, source=None):
        data = dict(serializer.validated_data)
        park = data.get("park") or source.park
        if not can_manage(self.request.user, park):
            raise PermissionDenied(f"you do not administer park {park.code}")
        items = data.pop("data_items", None)
        try:
            serializer.instance = save_source(actor=self.request.user, source=source, data_items=items, **data)
        except ValidationError as exc:
            raise DRFValidationError(exc.message_dict) from exc

    def perform_create(self, serializer):
        self._save(serializer)

    def perform_update(self, serializer):
        self._save(serializer, self.get_object())

    @extend_schema(methods=["GET"], responses=CommandSerializer(many=True))
    @extend_schema(methods=["POST"], request=CommandSerializer, responses={201: CommandSerializer})
    @action(detail=True, methods=["get", "post"], url_path="commands")
    def commands(self, request, sourceId=None):
        """Downlink commands of a source (R-5.3.1, interfaces.md §2): send one, or list them with their
        delivery state (pending → delivered → acknowledged / failed / expired)."""
        from datetime import timedelta

        source = self.get_object()
        if request.method == "GET":
            # paginated like every list of the API ({count, next, previous, results}, newest first)
            page = self.paginate_queryset(source.commands.order_by("-created_at", "-pk"))
            return self.get_paginated_response(CommandSerializer(page, many=True).data)
        if not can_manage(request.user, source.park):
            raise PermissionDenied(f"you do not administer park {source.park.code}")
        ser = CommandSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        data = ser.validated_data
        try:
            cmd = create_command(actor=request.user, source=source, type=data["type"], params=data.get("params") or {},
                                 ttl=timedelta(seconds=data.get("expiresIn", 3600)))
        except ValidationError as exc:
            raise DRFValidationError(exc.message_dict) from exc
        return Response(CommandSerializer(cmd).data, status=status.HTTP_201_CREATED)
