from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from apps.core.admin import ServiceAdmin
from apps.sources.models import DataSource
from apps.sources.services import SOURCE_FIELDS, save_source


@admin.register(DataSource)
class DataSourceAdmin(ServiceAdmin, SimpleHistoryAdmin):
    list_display = ["source_id", "name", "park", "kind", "protocol", "collection_method", "expected_interval_s",
                    "enabled", "evidence_required"]
    list_filter = ["park", "kind", "protocol", "enabled", "collection_method"]
    search_fields = ["source_id", "name", "serial_number", "location"]
    filter_horizontal = ["data_items"]

    def save_via_service(self, request, obj, form, change):
        fields = {k: form.cleaned_data[k] for k in SOURCE_FIELDS if k in form.cleaned_data}
        saved = save_source(actor=request.user, source=obj if change else None,
                            data_items=list(form.cleaned_data.get("data_items", [])), **fields)
        obj.pk = saved.pk
