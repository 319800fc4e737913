"""Catalog endpoints: classes, data items (standard and park-defined) and enumerations."""

from django.core.exceptions import ValidationError
from rest_framework import serializers, viewsets
from rest_framework.exceptions import ValidationError as DRFValidationError

from apps.accounts import access
from apps.accounts.access import Action
from apps.accounts.api import ScopedSlugField
from apps.accounts.models import Park
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
    park = ScopedSlugField(Park, slug_field="code", required=False, allow_null=True)
    enumeration = serializers.SlugRelatedField(slug_field="code", queryset=Enumeration.objects.all(),
                                               required=False, allow_null=True)

    class Meta:
        model = DataItem
        fields = ["code", "name_zh", "name_en", "table", "section", "data_type", "unit", "precision", "methods",
                  "basis", "default_frequency", "enumeration", "park", "evidence_required", "is_active"]
        read_only_fields = ["table", "section"]
        extra_kwargs = {"code": {"validators": []}}


class DataItemViewSet(viewsets.ModelViewSet):
    """Appendix A data items: the standard's (reference data, readable by every caller, changed only by
    platform administrators) and the park-defined codes (CS/CK/CO + 6 digits) of the caller's parks, which
    their park administrators add and change (``manage``). Another park's code answers 404, like an unknown
    one."""

    serializer_class = DataItemSerializer
    lookup_field = "code"
    http_method_names = ["get", "post", "patch", "head", "options"]
    access_rules = {"list": Action.VIEW, "retrieve": Action.VIEW, "create": Action.MANAGE,
                    "partial_update": Action.MANAGE}

    def get_queryset(self):
        return selectors.items_for(self.request.user, table=self.request.query_params.get("table"),
                                   prefix=self.request.query_params.get("prefix"))

    def _save(self, serializer, item=None):
        data = dict(serializer.validated_data)
        park = data.get("park", item.park if item else None)
        # None is the standard's catalog: platform administrators only (check(…, None) is system-only)
        access.require_move(self.request.user, Action.MANAGE, item.park if item else park, park)
        try:
            serializer.instance = services.save_data_item(actor=self.request.user, item=item, **data)
        except ValidationError as exc:
            raise DRFValidationError(exc.message_dict) from exc

    def perform_create(self, serializer):
        # Codes are one platform-wide namespace (a reading names only its code), so a code taken by any park
        # is refused here; the answer is the same whoever holds it (docs/roles.md, "what stays visible").
        if selectors.code_taken(serializer.validated_data.get("code")):
            raise DRFValidationError({"code": ["this code exists already"]})
        self._save(serializer)

    def perform_update(self, serializer):
        serializer.validated_data.pop("code", None)
        self._save(serializer, serializer.instance)


class CatalogClassViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = CatalogClassSerializer
    queryset = CatalogClass.objects.none()  # names the model for the schema's {code}; rows: get_queryset
    pagination_class = None
    access_rules = {"list": Action.VIEW, "retrieve": Action.VIEW}

    def get_queryset(self):
        return selectors.classes_for(self.request.user)


class EnumerationViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = EnumerationSerializer
    lookup_field = "code"
    pagination_class = None
    access_rules = {"list": Action.VIEW, "retrieve": Action.VIEW}

    def get_queryset(self):
        return selectors.enumerations(self.request.user)
