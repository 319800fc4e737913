"""Third-party platforms in the portal (R-7.4.2.1, R-7.4.3.2): park administrators register them (the secret is
shown once), edit them, resume a suspended app_id and re-issue a secret; every write goes through
apps.integrations.services (validated, audited)."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from apps.accounts.access import Action
from apps.accounts.audit_admin import AuditHistoryMixin
from apps.accounts.portal import NOBODY, PortalAdmin, PortalTabularInline
from apps.core.admin import ServiceAdmin
from apps.core.errors import CarbonParkError
from apps.integrations import services
from apps.integrations.models import CallbackDelivery, Platform, Subscription


class PlatformForm(forms.ModelForm):
    ip_whitelist = forms.CharField(
        label=_("IP whitelist"), widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("one address or CIDR network per line, e.g. 203.0.113.0/24"))

    class Meta:
        model = Platform
        fields = ["park", "name", "uscc", "base_url", "backup_url", "ip_whitelist", "alert_email", "alert_phone",
                  "callback_url", "certified", "rate_limit"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["ip_whitelist"] = "\n".join(self.instance.ip_whitelist)

    def clean_ip_whitelist(self):
        try:
            return services.clean_whitelist(self.cleaned_data["ip_whitelist"])
        except CarbonParkError as exc:
            raise ValidationError(exc.error.message(**exc.params)) from None

    def clean_uscc(self):
        from apps.core.validators import normalize_uscc, uscc_is_valid

        value = normalize_uscc(self.cleaned_data["uscc"])
        if not uscc_is_valid(value):
            raise ValidationError(services.errors.E7415.message(value=value[:40]))
        return value


class SubscriptionInline(PortalTabularInline):
    model = Subscription
    extra = 0
    fields = ["topic_code", "data_codes", "frequency", "callback_url", "created_at"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Platform)
class PlatformAdmin(AuditHistoryMixin, PortalAdmin, ServiceAdmin):
    form = PlatformForm
    delete_action = NOBODY  # a platform is suspended, never deleted: its readings and audit name it
    list_display = ["name", "park", "app_id", "state", "certified", "use_backup", "last_probe_ms", "backup_probe_ok",
                    "created_at"]
    list_filter = ["state", "certified", "park"]
    search_fields = ["name", "app_id", "uscc"]
    readonly_fields = ["app_id", "state", "state_reason", "state_since", "use_backup", "last_probe_at",
                       "last_probe_ms", "last_probe_ok", "backup_probe_at", "backup_probe_ms", "backup_probe_ok",
                       "recovered_at"]
    inlines = [SubscriptionInline]
    actions = ["resume", "reissue"]

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "park"] if obj else []

    def get_fields(self, request, obj=None):
        # registering: the form's fields only (app_id, state and health exist once it is saved)
        return list(PlatformForm.Meta.fields) + (self.readonly_fields if obj else [])

    def get_inlines(self, request, obj):
        return self.inlines if obj else []

    def save_via_service(self, request, obj, form, change):
        fields = {f: form.cleaned_data[f] for f in services.PLATFORM_FIELDS if f in form.cleaned_data}
        try:
            if not change:
                platform, secret = services.register_platform(actor=request.user, park=form.cleaned_data["park"],
                                                              **fields)
                obj.pk, obj.app_id = platform.pk, platform.app_id
                self.message_user(request, _("app_id %(app_id)s; secret (shown only now, copy it): %(secret)s") % {
                    "app_id": platform.app_id, "secret": secret}, messages.WARNING)
            else:
                services.update_platform(actor=request.user, platform=Platform.objects.get(pk=obj.pk), **fields)
        except CarbonParkError as exc:
            raise ValidationError(exc.error.message(**exc.params)) from None

    @admin.action(description=_("Resume the selected suspended platforms"))
    def resume(self, request, queryset):
        done = 0
        for platform in queryset.filter(state=Platform.State.SUSPENDED).select_related("park"):
            if self.may(request, Action.MANAGE, platform):
                services.resume_platform(actor=request.user, platform=platform, reason="portal")
                done += 1
        self.message_user(request, _("%(count)d platform(s) resumed.") % {"count": done}, messages.SUCCESS)

    @admin.action(description=_("Issue a new secret (the old one stops working)"))
    def reissue(self, request, queryset):
        for platform in queryset.select_related("park"):
            if self.may(request, Action.MANAGE, platform):
                secret = services.reissue_secret(actor=request.user, platform=platform)
                self.message_user(request, _("New secret of %(app_id)s (shown only now, copy it): %(secret)s") % {
                    "app_id": platform.app_id, "secret": secret}, messages.WARNING)


@admin.register(CallbackDelivery)
class CallbackDeliveryAdmin(PortalAdmin):
    # the log is written by apps.integrations.callbacks alone: every field read-only; "change" is the replay action
    add_action = delete_action = NOBODY
    change_action = Action.MANAGE
    list_display = ["created_at", "platform", "event", "state", "attempts", "last_status", "last_error",
                    "delivered_at"]
    list_filter = ["state", "event"]
    search_fields = ["webhook_id"]
    list_select_related = ["platform"]
    readonly_fields = ["platform", "webhook_id", "url", "event", "payload", "state", "attempts", "last_status",
                       "last_error", "log", "next_at", "created_at", "delivered_at"]
    actions = ["replay"]

    @admin.action(description=_("Send the selected notices again (dead letters: from the first attempt)"))
    def replay(self, request, queryset):
        from apps.integrations import callbacks

        rows = list(queryset.select_related("platform__park"))
        n = callbacks.replay(actor=request.user, deliveries=rows)
        self.message_user(request, _("%(count)d notice(s) queued again.") % {"count": n}, messages.SUCCESS)
