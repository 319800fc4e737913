"""The readings browser and the logs beside it. Read-only: readings change only through services."""

from django.contrib import admin
from django.db.models import F
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import Park
from apps.catalog.models import DataItem
from apps.core.admin import EstimatedCountPaginator, ReadOnlyAdmin
from apps.ingestion.models import Flag, IngestBatch, Reading, Rejection, ValidationEvent
from apps.ingestion.normalize import Refused, parse_timestamp


class InputFilter(admin.SimpleListFilter):
    """A text box instead of a list of links: sources and time bounds are too many to list."""

    template = "admin/input_filter.html"

    def lookups(self, request, model_admin):
        return ((None, None),)

    def choices(self, changelist):
        all_choice = next(super().choices(changelist))
        all_choice["query_parts"] = [(k, v) for k, v in changelist.get_filters_params().items()
                                     if k != self.parameter_name]
        yield all_choice


class SourceFilter(InputFilter):
    title = _("source ID")
    parameter_name = "source"

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(source__source_id=self.value().strip())
        return queryset


class _TimeBound(InputFilter):
    op = ""

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        from django.utils import timezone

        try:
            ts = parse_timestamp(self.value().strip(), timezone.get_current_timezone())
        except Refused:
            return queryset.none()
        return queryset.filter(**{f"ts__{self.op}": ts})


class StartFilter(_TimeBound):
    title = _("from (YYYY-MM-DD HH:MM:SS)")
    parameter_name = "start"
    op = "gte"


class EndFilter(_TimeBound):
    title = _("to (YYYY-MM-DD HH:MM:SS)")
    parameter_name = "end"
    op = "lte"


class ParkFilter(admin.SimpleListFilter):
    title = _("park")
    parameter_name = "park"

    def lookups(self, request, model_admin):
        return [(p.pk, str(p)) for p in Park.objects.all()]

    def queryset(self, request, queryset):
        return queryset.filter(park_id=self.value()) if self.value() else queryset


class ItemFilter(admin.SimpleListFilter):
    title = _("data code")
    parameter_name = "code"

    def lookups(self, request, model_admin):
        return [(i.code, str(i)) for i in DataItem.objects.all()]

    def queryset(self, request, queryset):
        return queryset.filter(data_item__code=self.value()) if self.value() else queryset


class FlagFilter(admin.SimpleListFilter):
    title = _("flag")
    parameter_name = "flag"

    def lookups(self, request, model_admin):
        return list(Flag.LABELS.items())

    def queryset(self, request, queryset):
        bit = Flag.NAMES.get(self.value() or "")
        if not bit:
            return queryset
        return queryset.alias(flag_bits=F("flags").bitand(bit)).exclude(flag_bits=0)


@admin.register(Reading)
class ReadingAdmin(ReadOnlyAdmin):
    list_display = ["ts", "source", "data_item", "value_display", "unit", "status", "flag_names", "received",
                    "channel"]
    list_filter = [ParkFilter, SourceFilter, ItemFilter, FlagFilter, StartFilter, EndFilter, "status"]
    list_select_related = ["source", "data_item"]
    ordering = ["-ts"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 100
    readonly_fields = [f.name for f in Reading._meta.fields]

    @admin.display(description=_("value"))
    def value_display(self, obj):
        return obj.value if obj.text_value is None else obj.text_value

    @admin.display(description=_("unit"))
    def unit(self, obj):
        return obj.data_item.unit

    @admin.display(description=_("flags"))
    def flag_names(self, obj):
        return ", ".join(str(Flag.LABELS[n]) for n in Flag.names(obj.flags))

    @admin.display(description=_("as received"))
    def received(self, obj):
        if obj.received_unit:
            return f"{obj.value if obj.received_value is None else obj.received_value} {obj.received_unit}"
        return ""


@admin.register(IngestBatch)
class IngestBatchAdmin(ReadOnlyAdmin):
    list_display = ["id", "received_at", "channel", "actor_label", "park", "total", "accepted", "duplicates",
                    "rejected", "flagged", "warned"]
    list_filter = ["channel", "park"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False


@admin.register(Rejection)
class RejectionAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "code", "source_ref", "data_code", "field", "message_zh", "batch"]
    list_filter = ["code", "park"]
    search_fields = ["source_ref", "raw"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False


@admin.register(ValidationEvent)
class ValidationEventAdmin(ReadOnlyAdmin):
    list_display = ["batch", "index", "kind", "code", "source_ref", "data_code", "ts", "value_repr", "message_zh"]
    list_filter = ["kind", "code"]
    search_fields = ["source_ref"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False
