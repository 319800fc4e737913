from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EntryConfig(AppConfig):
    name = "apps.entry"
    verbose_name = _("Manual entry")
