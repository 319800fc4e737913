from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from apps.accounts import access, services
from apps.accounts.access import Action
from apps.accounts.audit_admin import AuditHistoryMixin
from apps.accounts.models import ApiToken, Membership, Park
from apps.accounts.portal import NOBODY, SYSTEM_ONLY, PortalAdmin
from apps.core.admin import ConfigVersionAdmin, ServiceAdmin
from apps.core.models import ConfigVersion


@admin.register(Park)
class ParkAdmin(AuditHistoryMixin, PortalAdmin, ServiceAdmin, SimpleHistoryAdmin):
    add_action = delete_action = SYSTEM_ONLY  # a park administrator edits its park; parks come and go by the platform
    list_display = ["code", "name_zh", "name_en", "time_zone", "uscc"]
    search_fields = ["code", "name_zh", "name_en", "uscc"]

    def save_via_service(self, request, obj, form, change):
        fields = {f: form.cleaned_data[f] for f in services.PARK_FIELDS if f in form.cleaned_data}
        services.save_park(actor=request.user, park=obj if change else None, **fields)


@admin.register(Membership)
class MembershipAdmin(AuditHistoryMixin, PortalAdmin, ServiceAdmin):
    list_display = ["user", "park", "role"]
    list_filter = ["role", "park"]
    list_select_related = ["user", "park"]
    autocomplete_fields = ["park"]

    def get_readonly_fields(self, request, obj=None):
        # a membership is a user's role in one park: another user or park is another membership
        return ["user", "park"] if obj else []

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user" and not access.is_system(request.user):
            # a park administrator picks among its parks' people and people of no park yet, never the
            # staff of parks it does not manage
            from django.contrib.auth import get_user_model
            from django.db.models import Q

            managed = access.park_ids(request.user, Action.MANAGE)
            kwargs["queryset"] = get_user_model().objects.filter(
                Q(memberships__park__in=managed) | Q(memberships__isnull=True), is_active=True,
                is_superuser=False).distinct()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_via_service(self, request, obj, form, change):
        services.set_membership(actor=request.user, user=obj.user, park=obj.park, role=obj.role)

    # Removing a member is a revoke: the service takes its guardian rows away in the same transaction and
    # records it, whether from the change page or the list's bulk action.
    def delete_model(self, request, obj):
        services.revoke_membership(actor=request.user, user=obj.user, park=obj.park)

    def delete_queryset(self, request, queryset):
        for membership in queryset.select_related("user", "park"):
            services.revoke_membership(actor=request.user, user=membership.user, park=membership.park)


class TokenForm(forms.ModelForm):
    class Meta:
        model = ApiToken
        fields = ["name", "park", "role", "is_active"]


@admin.register(ApiToken)
class ApiTokenAdmin(AuditHistoryMixin, PortalAdmin, ServiceAdmin):
    # a token is withdrawn (untick "active": revoke_token, audited), never deleted: its row names who used it
    delete_action = NOBODY
    form = TokenForm
    list_display = ["name", "park", "role", "prefix", "is_active", "created_at", "last_used_at"]
    list_filter = ["park", "role", "is_active"]
    list_select_related = ["park"]
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


@admin.register(ConfigVersion)
class PortalConfigVersionAdmin(PortalAdmin, ConfigVersionAdmin):
    """Plumbing: system administrators only (no park path in apps/accounts/access.py)."""
