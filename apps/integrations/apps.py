from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IntegrationsConfig(AppConfig):
    name = "apps.integrations"
    verbose_name = _("Third-party platforms")

    def ready(self):
        from apps.accounts import access

        access.register("integrations.platform", "park")
        access.register("integrations.subscription", "platform__park")
        access.register("integrations.callbackdelivery", "platform__park")
