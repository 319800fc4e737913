"""The readings browser and the logs beside it. Read-only: readings change only through services."""

from django.contrib import admin
from django.db.models import Exists, F, OuterRef
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from apps.accounts import access
from apps.accounts.portal import PortalAdmin
from apps.catalog.models import DataItem
from apps.core.admin import EstimatedCountPaginator, ReadOnlyAdmin, SeekPaginator
from apps.core.text import number
from apps.corrections import selectors as effective
from apps.ingestion.models import Flag, IdempotencyKey, IngestBatch, Reading, Rejection, Rollup, ValidationEvent
from apps.ingestion.normalize import Refused, parse_timestamp
from apps.sources.models import DataSource


class InputFilter(admin.SimpleListFilter):
    """A text box instead of a list of links: sources and time bounds are too many to list."""

    template = "admin/input_filter.html"

    def lookups(self, request, model_admin):
        return ((None, None),)

    def choices(self, changelist):
        all_choice = next(super().choices(changelist))
        # Everything else of the query (other filters, sort order, search) rides along; values are lists.
        all_choice["query_parts"] = [(k, v if isinstance(v, list) else [v]) for k, v in changelist.params.items()
                                     if k not in (self.parameter_name, "p")]
        yield all_choice


class SourceFilter(InputFilter):
    title = _("source ID")
    parameter_name = "source"

    def queryset(self, request, queryset):
        if self.value():
            # the source's id as a constant, not a join: with it the planner knows (extended statistics of
            # migration ingestion 0006) that a source implies its park, and reads a park-scoped page in time order
            ids = list(DataSource.objects.filter(source_id=self.value().strip()).values_list("pk", flat=True))
            return queryset.filter(source_id__in=ids)
        return queryset


class _TimeBound(InputFilter):
    op = ""
    field = "ts"

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        from django.utils import timezone

        try:
            ts = parse_timestamp(self.value().strip(), timezone.get_current_timezone())
        except Refused:
            return queryset.none()
        return queryset.filter(**{f"{self.field}__{self.op}": ts})


class StartFilter(_TimeBound):
    title = _("start time")
    parameter_name = "start"
    op = "gte"


class EndFilter(_TimeBound):
    title = _("end time")
    parameter_name = "end"
    op = "lte"


class ParkFilter(admin.SimpleListFilter):
    title = _("park")
    parameter_name = "park"

    def lookups(self, request, model_admin):
        return [(p.pk, str(p)) for p in access.parks(request.user)]

    def queryset(self, request, queryset):
        return queryset.filter(park_id=self.value()) if self.value() else queryset


class ItemFilter(admin.SimpleListFilter):
    title = _("data code")
    parameter_name = "code"

    def lookups(self, request, model_admin):
        return [(i.code, str(i)) for i in access.restrict(DataItem.objects.all(), request.user)]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        ids = list(DataItem.objects.filter(code=self.value()).values_list("pk", flat=True))  # constants, as above
        return queryset.filter(data_item_id__in=ids)


POST_CHECK = "postcheck"
POST_CHECK_ANNOTATION = "post_check_hit"


def post_check_hits():
    """The hits of checks after storage (R-9.2.2) on the outer reading: "suspect" beside it, never on it
    (apps/quality/postchecks.py). One index probe per row (quality_posthit's index on the reading identity)."""
    from apps.quality.models import PostHit

    return PostHit.objects.filter(source_id=OuterRef("source_id"), data_item_id=OuterRef("data_item_id"),
                                  ts=OuterRef("ts"))


class FlagFilter(admin.SimpleListFilter):
    title = _("flag")
    parameter_name = "flag"

    def lookups(self, request, model_admin):
        return [*Flag.LABELS.items(), (POST_CHECK, _("suspect (post check)"))]

    def queryset(self, request, queryset):
        if self.value() == POST_CHECK:
            return queryset.filter(Exists(post_check_hits()))
        bit = Flag.NAMES.get(self.value() or "")
        if not bit:
            return queryset
        if bit == Flag.CORRECTED:  # a revision beside the reading, not a stored bit
            return effective.only_revised(queryset)
        return queryset.exclude(flags=0).alias(flag_bits=F("flags").bitand(bit)).exclude(flag_bits=0)


@admin.register(Reading)
class ReadingAdmin(PortalAdmin, ReadOnlyAdmin):
    list_display = ["collected", "source", "data_item", "value_display", "unit", "status", "flag_names", "received",
                    "channel"]
    list_filter = [ParkFilter, SourceFilter, ItemFilter, FlagFilter, StartFilter, EndFilter, "status"]
    list_select_related = ["source", "data_item"]
    ordering = ["-ts"]
    paginator = SeekPaginator
    show_full_result_count = False
    list_per_page = 100
    readonly_fields = [f.name for f in Reading._meta.fields]

    def changelist_view(self, request, extra_context=None):
        """Links to the rollups of the same park, source and code: hourly, daily, monthly."""
        from urllib.parse import urlencode

        from django.urls import reverse

        url = reverse(f"{self.admin_site.name}:ingestion_rollup_changelist")
        keep = {k: request.GET[k] for k in ("park", "source", "code") if request.GET.get(k)}
        labels = {Rollup.Interval.HOUR: _("Hourly rollups"), Rollup.Interval.DAY: _("Daily rollups"),
                  Rollup.Interval.MONTH: _("Monthly rollups")}
        links = [(value, labels[value], f"{url}?{urlencode({**keep, 'interval__exact': value})}")
                 for value, _label in Rollup.Interval.choices]
        return super().changelist_view(request, {**(extra_context or {}), "rollup_links": links})

    @admin.display(description=_("collection time"), ordering="ts")
    def collected(self, obj):
        from django.utils import timezone

        return timezone.localtime(obj.ts).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]

    def get_queryset(self, request):
        # the effective value beside the stored one: one index probe per row shown (apps/corrections/selectors.py)
        # and whether a check after storage found it suspect (an EXISTS beside it, the same query)
        return effective.with_latest_revision(super().get_queryset(request)).annotate(
            **{POST_CHECK_ANNOTATION: Exists(post_check_hits())})

    @admin.display(description=_("value"))
    def value_display(self, obj):
        """The effective value; a corrected reading shows the value stored at ingest beside it."""
        if obj.text_value is not None:
            return obj.text_value
        value, revision = effective.split(obj.value, getattr(obj, effective.REVISION_ANNOTATION, None))
        if revision is None:
            return number(value)
        return format_html('{} <span class="corrected" title="{}">({} {}) ✎</span>', number(value), _("corrected"),
                           _("raw"), number(obj.value))

    @admin.display(description=_("unit"))
    def unit(self, obj):
        return obj.data_item.unit

    @admin.display(description=_("flags"))
    def flag_names(self, obj):
        flags = effective.effective_flags(obj.flags, getattr(obj, effective.REVISION_ANNOTATION, None))
        names = [str(Flag.LABELS[n]) for n in Flag.names(flags)]
        if getattr(obj, POST_CHECK_ANNOTATION, False):
            names.append(str(_("suspect (post check)")))
        return ", ".join(names)

    @admin.display(description=_("as received"))
    def received(self, obj):
        if obj.received_unit:
            return f"{number(obj.value if obj.received_value is None else obj.received_value)} {obj.received_unit}"
        return ""


class BucketStartFilter(StartFilter):
    title = _("bucket from")
    field = "bucket"


class BucketEndFilter(EndFilter):
    title = _("bucket until")
    field = "bucket"


BUCKET_FORMATS = {Rollup.Interval.HOUR: "%Y-%m-%d %H:00", Rollup.Interval.DAY: "%Y-%m-%d",
                  Rollup.Interval.MONTH: "%Y-%m"}


@admin.register(Rollup)
class RollupAdmin(PortalAdmin, ReadOnlyAdmin):
    """Hourly, daily and monthly rollups beside the readings browser (docs/rollups.md). Written only by the
    refresh task; nothing to add, change or delete here."""

    list_display = ["bucket_local", "interval", "source", "data_item", "count", "sum", "min", "max", "last",
                    "unit"]
    list_filter = ["interval", ParkFilter, SourceFilter, ItemFilter, BucketStartFilter, BucketEndFilter]
    list_select_related = ["source", "data_item", "park"]
    ordering = ["-bucket"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 100
    readonly_fields = [f.name for f in Rollup._meta.fields]

    @admin.display(description=_("bucket (park time)"), ordering="bucket")
    def bucket_local(self, obj):
        import zoneinfo

        return obj.bucket.astimezone(zoneinfo.ZoneInfo(obj.park.time_zone)).strftime(BUCKET_FORMATS[obj.interval])

    @admin.display(description=_("unit"))
    def unit(self, obj):
        return obj.data_item.unit


@admin.register(IngestBatch)
class IngestBatchAdmin(PortalAdmin, ReadOnlyAdmin):
    list_display = ["id", "received_at", "channel", "actor_label", "park", "total", "accepted", "duplicates",
                    "rejected", "flagged", "warned"]
    list_filter = ["channel", "park"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False


class LocalizedMessage:
    """Show message_zh or message_en, whichever the portal's language is."""

    @admin.display(description=_("message"))
    def message(self, obj):
        from django.utils.translation import get_language

        return obj.message_en if (get_language() or "").startswith("en") else obj.message_zh


@admin.register(Rejection)
class RejectionAdmin(PortalAdmin, LocalizedMessage, ReadOnlyAdmin):
    list_display = ["received_at", "code", "source_ref", "data_code", "field", "message", "batch"]
    list_filter = ["code", "park"]
    search_fields = ["source_ref", "raw"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False


@admin.register(ValidationEvent)
class ValidationEventAdmin(PortalAdmin, LocalizedMessage, ReadOnlyAdmin):
    list_display = ["batch", "index", "kind", "code", "source_ref", "data_code", "ts", "value_repr", "message"]
    list_filter = ["kind", "code"]
    search_fields = ["source_ref"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(PortalAdmin, ReadOnlyAdmin):
    list_display = ["created_at", "scope", "key", "status_code", "batch"]
    search_fields = ["key", "scope"]
    paginator = EstimatedCountPaginator
    show_full_result_count = False
