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
                plan = qs.order_by().explain(format="json")
            except EmptyResultSet:
                plan = ""
            estimate = int(json.loads(plan)[0]["Plan"]["Plan Rows"]) if plan else 0
            if estimate > self.CAP:
                return estimate
        return qs.order_by()[: self.CAP + 1].count()


# AuditEntry's page is the audit browser, which needs the access seam: apps.accounts.audit_admin registers it.
# ConfigVersion's is registered through the seam by apps/accounts/admin.py: the ground floor imports no app.
class ConfigVersionAdmin(ReadOnlyAdmin):
    list_display = ["name", "version"]


admin.site.site_header = _("CarbonPark · zero-carbon park data access")
admin.site.site_title = _("CarbonPark")
admin.site.index_title = _("Carbon data platform")
admin.site.site_url = None  # the portal is the admin at the site root: no separate "View site"
