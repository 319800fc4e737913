"""The portal's admin site: the landing page of each role, the role matrix page, and a menu that puts the
park's data and people first and the platform's plumbing last (issue #8, R-7.3.3)."""

from django.urls import path

# Apps in the order staff meet them: data, then sources and people, then reference data, plumbing last.
# Apps not named here sit between the named ones and the plumbing.
APP_ORDER = ["ingestion", "quality", "sources", "integrations", "pulls", "accounts", "auth", "catalog"]
PLUMBING = ["core", "django_celery_beat"]
MODEL_ORDER = {
    "ingestion": ["reading", "rollup", "rejection", "ingestbatch", "validationevent", "idempotencykey"],
    "quality": ["alarm", "posthit", "gap", "fill", "indicatormonth", "rule", "balancegroup", "registersetting",
                "meterreplacement", "registerinterval", "consumption", "deadlinereminder", "workdayoverride"],
    "integrations": ["platform", "subscription", "callbackdelivery"],
    "pulls": ["connector", "pullrun"],
    "sources": ["datasource", "devicestate", "statechange", "command", "sourcekey"],
    "accounts": ["park", "membership", "apitoken"],
    "auth": ["user", "group"],
    "catalog": ["dataitem", "catalogclass", "enumeration", "enumvalue"],
    "core": ["auditentry", "configversion"],
}


def _rank(order: list[str], key: str, default: int) -> int:
    return order.index(key) if key in order else default


def order_app_list(app_list: list[dict]) -> list[dict]:
    """Sort the admin's apps and their models for staff rather than alphabetically."""
    def app_key(app):
        label = app["app_label"]
        if label in PLUMBING:
            return (2, PLUMBING.index(label), "")
        return (0, APP_ORDER.index(label), "") if label in APP_ORDER else (1, 0, str(app["name"]))

    for app in app_list:
        order = MODEL_ORDER.get(app["app_label"], [])
        app["models"].sort(key=lambda m: (_rank(order, m["object_name"].lower(), len(order)), str(m["name"])))
    return sorted(app_list, key=app_key)


class LandingPagesMixin:
    """The landing page, the role matrix page and the menu order, for whichever AdminSite the portal uses
    (a mixin so that the park-scoped site of apps/accounts/portal.py can take it as is)."""

    def get_app_list(self, request, app_label=None):
        return order_app_list(super().get_app_list(request, app_label))

    def get_urls(self):
        from apps.accounts.views import roles_view
        from apps.entry import portal_excel as excel
        from apps.quality.deadlines.admin import overdue_page_view
        from apps.quality.indicators.dashboard import quality_dashboard_export_view, quality_dashboard_view
        from apps.uploads.portal import upload_page_view

        return [path("roles/", self.admin_view(roles_view), name="roles"),
                path("excel/", self.admin_view(excel.excel_list_view), name="entry_excel_list"),
                path("excel/<str:code>/", self.admin_view(excel.import_view), name="entry_excel_import"),
                path("excel/<str:code>/template.xlsx", self.admin_view(excel.template_view),
                     name="entry_excel_template"),
                path("exports/", self.admin_view(excel.exports_view), name="exports"),
                path("uploads/", self.admin_view(upload_page_view), name="uploads_page"),
                path("overdue/", self.admin_view(overdue_page_view), name="overdue_page"),
                path("quality/dashboard/", self.admin_view(quality_dashboard_view), name="quality_dashboard"),
                path("quality/dashboard/export/", self.admin_view(quality_dashboard_export_view),
                     name="quality_dashboard_export"),
                *super().get_urls()]

    def each_context(self, request):
        from apps.entry.portal_excel import may_export
        from apps.uploads.portal import may_upload

        context = super().each_context(request)
        user = getattr(request, "user", None)
        context["may_export"] = bool(user is not None and user.is_authenticated and may_export(user))
        context["may_upload"] = bool(user is not None and user.is_authenticated and may_upload(user))
        return context

    def index(self, request, extra_context=None):
        from apps.quality.views import landing_context

        return super().index(request, {**landing_context(request), **(extra_context or {})})

