from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from apps.accounts import services
from apps.accounts.audit_admin import AuditHistoryMixin
from apps.accounts.models import ApiToken, Membership, Park
from apps.core.admin import ServiceAdmin


@admin.register(Park)
class ParkAdmin(AuditHistoryMixin, ServiceAdmin, SimpleHistoryAdmin):
    list_display = ["code", "name_zh", "name_en", "time_zone", "uscc"]
    search_fields = ["code", "name_zh", "name_en", "uscc"]

    def save_via_service(self, request, obj, form, change):
        fields = {f: form.cleaned_data[f] for f in services.PARK_FIELDS if f in form.cleaned_data}
        services.save_park(actor=request.user, park=obj if change else None, **fields)


@admin.register(Membership)
class MembershipAdmin(AuditHistoryMixin, ServiceAdmin):
    list_display = ["user", "park", "role"]
    list_filter = ["role", "park"]
    autocomplete_fields = ["park"]

    def save_via_service(self, request, obj, form, change):
        services.set_membership(actor=request.user, user=obj.user, park=obj.park, role=obj.role)


class TokenForm(forms.ModelForm):
    class Meta:
        model = ApiToken
        fields = ["name", "park", "role", "is_active"]


@admin.register(ApiToken)
class ApiTokenAdmin(AuditHistoryMixin, ServiceAdmin):
    form = TokenForm
    list_display = ["name", "park", "role", "prefix", "is_active", "created_at", "last_used_at"]
    list_filter = ["park", "role", "is_active"]
    readonly_fields = ["prefix", "created_at", "last_used_at"]

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "park", "name"] if obj else self.readonly_fields

    def save_via_service(self, request, obj, form, change):
        if not change:
            token, key = services.issue_token(actor=request.user, park=obj.park, name=obj.name, role=obj.role)
            obj.pk = token.pk
            self.message_user(request, _("Key of the new token (shown only now, copy it): %(key)s") % {"key": key},
                              messages.WARNING)
        else:
            stored = ApiToken.objects.get(pk=obj.pk)
            services.update_token(actor=request.user, token=stored, role=obj.role, is_active=obj.is_active)
