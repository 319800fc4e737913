"""Catalog endpoints: classes, data items (standard and park-defined) and enumerations."""

from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404
from rest_framework import serializers, viewsets
from rest_framework.exceptions import PermissionDenied
from rest_framework.exceptions import ValidationError as DRFValidationError

from apps.accounts.models import Park
from apps.accounts.selectors import can_manage, park_ids_for
from apps.catalog import selectors, services
from apps.catalog.models import CatalogClass, DataItem, Enumeration, EnumValue


class EnumValueSerializer(serializers.ModelSerializer):
    class Meta:
        model = EnumValue
        fields = ["code", "label_zh", "label_en"]


class EnumerationSerializer(serializers.ModelSerializer):
    values = EnumValueSerializer(many=True, read_only=True)

    class Meta:
        model = Enumeration
        fields = ["code", "name_zh", "name_en", "values"]


class CatalogClassSerializer(serializers.ModelSerializer):
    class Meta:
        model = CatalogClass
        fields = ["code", "level", "parent", "name_zh", "name_en"]


class DataItemSerializer(serializers.ModelSerializer):
    park = serializers.SlugRelatedField(slug_field="code", queryset=Park.objects.all(), required=False,
                                        allow_null=True)
    enumeration = serializers.SlugRelatedField(slug_field="code", queryset=Enumeration.objects.all(),
                                               required=False, allow_null=True)

    class Meta:
        model = DataItem
        fields = ["code", "name_zh", "name_en", "table", "section", "data_type", "unit", "precision", "methods",
                  "basis", "default_frequency", "enumeration", "park", "is_active"]
        read_only_fields = ["table", "section"]
        extra_kwargs = {"code": {"validators": []}}


class DataItemViewSet(viewsets.ModelViewSet):
    """Appendix A data items. Park administrators add their park's own codes (CS/CK/CO + 6 digits)."""

    serializer_class = DataItemSerializer
    lookup_field = "code"
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        qs = selectors.items_for(park_ids=None if self.request.user.is_superuser else park_ids_for(self.request.user))
        table = self.request.query_params.get("table")
        if table in ("1", "2", "3"):
            qs = qs.filter(table=int(table))
        prefix = self.request.query_params.get("prefix")
        if prefix:
            qs = qs.filter(code__startswith=prefix.upper())
        return qs

    def _save(self, serializer, item=None):
        data = dict(serializer.validated_data)
        park = data.get("park", item.park if item else None)
        if park is None and not self.request.user.is_superuser:
            raise PermissionDenied("only platform administrators change the standard's items")
        if park is not None and not can_manage(self.request.user, park):
            raise PermissionDenied(f"you do not administer park {park.code}")
        try:
            serializer.instance = services.save_data_item(actor=self.request.user, item=item, **data)
        except ValidationError as exc:
            raise DRFValidationError(exc.message_dict) from exc

    def perform_create(self, serializer):
        if DataItem.objects.filter(code=serializer.validated_data.get("code")).exists():
            raise DRFValidationError({"code": ["this code exists already"]})
        self._save(serializer)

    def perform_update(self, serializer):
        serializer.validated_data.pop("code", None)
        self._save(serializer, get_object_or_404(DataItem, code=self.kwargs["code"]))


class CatalogClassViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = CatalogClassSerializer
    queryset = CatalogClass.objects.all()
    pagination_class = None


class EnumerationViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = EnumerationSerializer
    lookup_field = "code"
    pagination_class = None

    def get_queryset(self):
        return selectors.enumerations()
