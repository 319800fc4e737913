from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from apps.accounts.audit_admin import AuditHistoryMixin
from apps.accounts.portal import PortalAdmin, PortalTabularInline
from apps.catalog import services
from apps.catalog.models import CatalogClass, DataItem, Enumeration, EnumValue
from apps.core.admin import ServiceAdmin


@admin.register(CatalogClass)
class CatalogClassAdmin(PortalAdmin, ServiceAdmin):
    list_display = ["code", "level", "name_zh", "name_en", "park"]
    list_filter = ["level"]
    list_select_related = ["park"]
    search_fields = ["code", "name_zh", "name_en"]

    def save_via_service(self, request, obj, form, change):
        services.save_catalog_class(actor=request.user, code=obj.code, name_zh=obj.name_zh, name_en=obj.name_en,
                                    park=obj.park)


@admin.register(DataItem)
class DataItemAdmin(AuditHistoryMixin, PortalAdmin, ServiceAdmin, SimpleHistoryAdmin):
    list_display = ["code", "name_zh", "name_en", "data_type", "unit", "precision", "default_frequency", "park",
                    "evidence_required", "is_active"]
    list_filter = ["table", "data_type", "park", "evidence_required", "is_active"]
    search_fields = ["code", "name_zh", "name_en", "basis"]
    exclude = ["minor"]

    def save_via_service(self, request, obj, form, change):
        fields = {k: v for k, v in form.cleaned_data.items() if k != "minor"}
        services.save_data_item(actor=request.user, item=obj if change else None, **fields)


class EnumValueInline(PortalTabularInline):
    model = EnumValue
    extra = 1


@admin.register(EnumValue)
class EnumValueAdmin(PortalAdmin):
    list_display = ["enumeration", "code", "label_zh", "label_en", "order"]
    list_filter = ["enumeration"]
    search_fields = ["code", "label_zh", "label_en"]

    def save_model(self, request, obj, form, change):
        from apps.catalog.services import save_enum_value

        save_enum_value(actor=request.user, value=obj)


@admin.register(Enumeration)
class EnumerationAdmin(PortalAdmin):
    list_display = ["code", "name_zh", "name_en"]
    inlines = [EnumValueInline]

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        from apps.core.services import bump_config_version, record_change

        record_change(actor=request.user, action="catalog.enumeration.save", obj=form.instance)
        bump_config_version()
