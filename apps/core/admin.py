"""Admin building blocks: read-only logs, edits through services, and a count-free paginator."""

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import connection
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _


class ReadOnlyAdmin(admin.ModelAdmin):
    """Logs and stored data: visible, never edited here (history is new rows, never overwrites)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ServiceAdmin(admin.ModelAdmin):
    """Admin edits go through the app's service so they are validated and audited like the API's.

    Subclasses implement ``save_via_service(request, obj, form, change)`` returning the saved object."""

    def save_model(self, request, obj, form, change):
        self.save_via_service(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ValidationError as exc:
            self.message_user(request, "; ".join(exc.messages), messages.ERROR)
            from django.http import HttpResponseRedirect

            return HttpResponseRedirect(request.get_full_path())


class EstimatedCountPaginator(Paginator):
    """Large tables: COUNT(*) over millions of rows is what makes a changelist slow. Unfiltered, the
    planner's estimate is used; filtered, the planner's estimate when it is above the cap (a park's staff
    see every page filtered by their parks, issue #8), else the count, stopping at the cap."""

    CAP = 100_000

    @cached_property
    def count(self):
        qs = self.object_list
        if not qs.query.where:
            with connection.cursor() as cur:
                # a partitioned table's own reltuples is not kept up to date (autovacuum analyzes its
                # partitions, not it): the sum over its partitions (none for a plain table: its own)
                cur.execute("SELECT coalesce((SELECT sum(greatest(c.reltuples, 0)) FROM pg_partition_tree(%s::regclass)"
                            " t JOIN pg_class c ON c.oid = t.relid WHERE t.isleaf), (SELECT reltuples FROM pg_class "
                            "WHERE oid = %s::regclass))::bigint", [qs.model._meta.db_table] * 2)
                row = cur.fetchone()
            if row and row[0] > self.CAP:
                return int(row[0])
        else:
            import json

            from django.core.exceptions import EmptyResultSet

            try:  # a filter that matches nothing by construction (source__in=[]) has no plan
                # the plan of the count, not of the page: the page's select_related joins add planning time
                # (per partition) and, estimated as independent, cut the rows estimate by 10x and more
                # (a park's 525 000 readings of 52 million estimated at 43 000: an exact count for nothing)
                plan = qs.order_by().values("pk").explain(format="json")
            except EmptyResultSet:
                plan = ""
            estimate = int(json.loads(plan)[0]["Plan"]["Plan Rows"]) if plan else 0
            if estimate > self.CAP:
                return estimate
        return qs.order_by()[: self.CAP + 1].count()

    @cached_property
    def num_pages(self):
        """At most CAP rows deep: with an estimated count of millions, the admin's page links would offer the
        last page, an OFFSET of the whole table (minutes). Narrow by a filter (a time range) to go further."""
        return min(super().num_pages, max(1, self.CAP // self.per_page))

    def validate_number(self, number):
        """A page past the last one offered is the last one, not an error page."""
        from django.core.paginator import EmptyPage

        try:
            return super().validate_number(number)
        except EmptyPage:
            if int(number) > 1:
                return self.num_pages
            raise


class SeekPaginator(EstimatedCountPaginator):
    """For lists ordered by one indexed column (``seek_field``, then the primary key as Django's admin adds it):
    a deep page finds its first row's value by an index-only scan (the OFFSET over index entries, never over
    heap rows), counts the rows before that value (index-only too), and reads its page from there. A plain
    OFFSET reads and throws away one heap row per row skipped: page 1 000 of a park's readings read 100 000
    heap pages, 3.9 s at 52 million readings (bench/admin_browser.py)."""

    seek_field = "ts"
    SEEK_FROM = 1_000  # rows; a shallower OFFSET is cheaper than the two extra queries

    def page(self, number):
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        qs = self.object_list
        order = list(qs.query.order_by)
        field = self.seek_field
        if bottom < self.SEEK_FROM or not order or order[0] not in (field, f"-{field}"):
            return super().page(number)
        desc = order[0].startswith("-")
        newer, older = ("gt", "lte") if desc else ("lt", "gte")  # rows before the page, the page and after
        try:
            value = qs.order_by(order[0]).values_list(field, flat=True)[bottom]
        except IndexError:
            return super().page(number)
        before = qs.filter(**{f"{field}__{newer}": value}).order_by().count()
        skip = bottom - before  # rows sharing ``value`` that come before this page, in the list's order
        rows = qs.filter(**{f"{field}__{older}": value})[skip: skip + self.per_page]
        return self._get_page(rows, number, self)


# AuditEntry's page is the audit browser, which needs the access seam: apps.accounts.audit_admin registers it.
# ConfigVersion's is registered through the seam by apps/accounts/admin.py: the ground floor imports no app.
class ConfigVersionAdmin(ReadOnlyAdmin):
    list_display = ["name", "version"]


admin.site.site_header = _("CarbonPark · zero-carbon park data access")
admin.site.site_title = _("CarbonPark")
admin.site.index_title = _("Carbon data platform")
admin.site.site_url = None  # the portal is the admin at the site root: no separate "View site"
