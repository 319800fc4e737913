"""``django.contrib.admin`` with the portal's park-scoped site as ``admin.site`` (INSTALLED_APPS).

Kept apart from apps/accounts/portal.py: an app config module is imported before the models are ready."""

from django.contrib.admin.apps import AdminConfig


class PortalAdminConfig(AdminConfig):
    default_site = "apps.accounts.portal.PortalSite"

    def ready(self):
        super().ready()  # autodiscover: every admin module registers on the portal's site
        from django.contrib import admin

        from apps.accounts.portal import adopt

        adopt(admin.site)
