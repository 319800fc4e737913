from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IntegrationsConfig(AppConfig):
    name = "apps.integrations"
    verbose_name = _("Third-party platforms")

    def ready(self):
        from apps.accounts import access
        from apps.integrations import schema  # noqa: F401 - the OpenAPI extension of the bearer token

        access.register("integrations.platform", "park")
        access.register("integrations.subscription", "platform__park")
        access.register("integrations.callbackdelivery", "platform__park")
