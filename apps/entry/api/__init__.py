"""Read-only form endpoints (R-7.3.1): the forms a caller may fill or read, and any published version's
definition with its content hash. Drafts stay in the portal, for those who manage the park."""

from django.db.models import OuterRef, Subquery
from drf_spectacular.utils import extend_schema_field
from rest_framework import generics, serializers
from rest_framework.exceptions import NotFound

from apps.accounts.access import Action
from apps.entry import selectors
from apps.entry.models import Form, FormVersion

PERIODS = ["day", "month", "quarter", "year"]


class CurrentVersionSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    content_hash = serializers.CharField(help_text="SHA-256 of the definition's canonical JSON")
    published_at = serializers.DateTimeField()
    period = serializers.ChoiceField(choices=PERIODS)


class FormSerializer(serializers.ModelSerializer):
    park = serializers.CharField(source="park.code", allow_null=True, default=None,
                                 help_text="the park's code; null for the platform's default forms")
    current_version = serializers.SerializerMethodField()

    class Meta:
        model = Form
        fields = ["code", "park", "name_zh", "name_en", "current_version"]

    @extend_schema_field(CurrentVersionSerializer)
    def get_current_version(self, form):
        return CurrentVersionSerializer({"number": form.current_number, "content_hash": form.current_hash,
                                         "published_at": form.current_published_at,
                                         "period": form.current_period}).data


class FormVersionSerializer(serializers.ModelSerializer):
    form = serializers.CharField(source="form.code")
    park = serializers.CharField(source="form.park.code", allow_null=True, default=None)
    definition = serializers.JSONField(help_text="the published definition (docs/form-definition.schema.json), "
                                                 "items' catalog attributes resolved into it")

    class Meta:
        model = FormVersion
        fields = ["form", "park", "number", "content_hash", "published_at", "definition"]


class FormListView(generics.ListAPIView):
    """Forms the caller may read (its parks' own and the platform's defaults) that have a published version,
    with that version's number, hash and period. One query for the page, whatever its length."""

    serializer_class = FormSerializer
    access_rules = {"GET": Action.VIEW}

    def get_queryset(self):
        latest = FormVersion.objects.filter(form=OuterRef("pk")).order_by("-number")
        return (selectors.forms_for(self.request.user)
                .filter(current_number__isnull=False)
                .annotate(current_hash=Subquery(latest.values("content_hash")[:1]),
                          current_published_at=Subquery(latest.values("published_at")[:1]),
                          current_period=Subquery(latest.values("definition__period")[:1]))
                .order_by("code"))


class FormVersionView(generics.RetrieveAPIView):
    """One published version of a form: its definition and content hash. A form the caller may not read
    answers 404, like an unknown one."""

    serializer_class = FormVersionSerializer
    access_rules = {"GET": Action.VIEW}

    def get_object(self):
        version = selectors.version(self.request.user, self.kwargs["code"], self.kwargs["number"])
        if version is None:
            raise NotFound(f"form {self.kwargs['code']} version {self.kwargs['number']}")
        self.check_object_permissions(self.request, version)
        return version
