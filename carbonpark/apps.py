from django.contrib.admin.apps import AdminConfig


class PortalAdminConfig(AdminConfig):
    """The admin app with the portal's park-scoped site (apps.accounts.portal.PortalSite, which takes the
    landing pages of carbonpark/admin_site.py) as ``admin.site``."""

    default_site = "apps.accounts.portal.PortalSite"

    def ready(self):
        super().ready()  # autodiscover: every admin module registers on the portal's site
        from django.contrib import admin

        from apps.accounts.portal import adopt

        adopt(admin.site)  # the ModelAdmins of auth and django_celery_beat through the park-access seam
