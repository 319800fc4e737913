"""The load log in the portal (R-7.2.3, R-8.4.1): every batch file loaded, by whom, its MD5, counts, duration and
the file-level error. Read-only: the log is written by apps/batch/loading.py alone."""

from django.contrib import admin
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from apps.accounts.portal import PortalAdmin
from apps.batch.models import FileLoad
from apps.core.admin import ReadOnlyAdmin


@admin.register(FileLoad)
class FileLoadAdmin(PortalAdmin, ReadOnlyAdmin):
    list_display = ["started_at", "filename", "park", "origin", "actor_label", "md5", "state", "rows", "accepted",
                    "duplicates", "rejected", "duration", "error"]
    list_filter = ["state", "origin", "park"]
    search_fields = ["filename", "md5", "upload_id"]
    list_select_related = ["park"]
    date_hierarchy = "started_at"
    show_full_result_count = False

    @admin.display(description=_("duration (s)"), ordering="duration_ms")
    def duration(self, obj):
        return f"{obj.duration_ms / 1000:.1f}"

    @admin.display(description=_("file error"))
    def error(self, obj):
        if not obj.error_code:
            return ""
        text = obj.error_en if (get_language() or "").startswith("en") else obj.error_zh
        return f"{obj.error_code} {text}"
