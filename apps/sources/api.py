"""Data sources: list, read, register and change (interfaces.md §3 /api/v1/sources/)."""

from django.core.exceptions import ValidationError
from rest_framework import serializers, viewsets
from rest_framework.exceptions import PermissionDenied
from rest_framework.exceptions import ValidationError as DRFValidationError

from apps.accounts.models import Park
from apps.accounts.selectors import can_manage, parks_for
from apps.catalog.models import DataItem
from apps.sources.models import DataSource
from apps.sources.selectors import sources_for
from apps.sources.services import save_source


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
