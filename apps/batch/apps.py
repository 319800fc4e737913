from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BatchConfig(AppConfig):
    name = "apps.batch"
    verbose_name = _("Batch files")

    def ready(self):
        from apps.accounts import access

        access.register("batch.fileload", "park")
