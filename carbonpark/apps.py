from django.contrib.admin.apps import AdminConfig


class PortalAdminConfig(AdminConfig):
    """The admin app with the portal's site (carbonpark.admin_site.PortalSite) as ``admin.site``."""

    default_site = "carbonpark.admin_site.PortalSite"
