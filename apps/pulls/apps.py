from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PullsConfig(AppConfig):
    name = "apps.pulls"
    label = "pulls"
    verbose_name = _("Pulls from other systems")

    def ready(self):
        from apps.accounts import access

        # A connector and its runs belong to the connector's park: another park's look unknown.
        access.register("pulls.connector", "park")
        access.register("pulls.pullrun", "connector__park")
