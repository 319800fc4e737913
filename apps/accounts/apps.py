from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    verbose_name = _("Parks and accounts")

    def ready(self):
        from apps.accounts import auth_events, schema  # noqa: F401 - log-in audit receivers; the OpenAPI extension
