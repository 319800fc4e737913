from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class QualityConfig(AppConfig):
    name = "apps.quality"
    verbose_name = _("Data quality")

    def ready(self):
        from apps.accounts import access

        # the working-day table is the platform's (system administrators); the reminder log is its park's
        access.register("quality.workdayoverride", None, shared=True)
        access.register("quality.historicalworkdayoverride", None, shared=True)
        access.register("quality.deadlinereminder", "park")
        # meter registers and what is derived from them: their park's
        for label in ("registersetting", "registerinterval", "consumption"):
            access.register(f"quality.{label}", "park")
        access.register("quality.meterreplacement", "setting__park")
        access.register("quality.fill", "park")
        access.register("quality.indicatormonth", "park")
