"""Pull connectors in the portal: park administrators (MANAGE) set them up; whoever views the park sees them and
their run log. Saves go through apps/pulls/services.py (validated, audited, the secret sealed)."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from apps.accounts.portal import PortalAdmin
from apps.core.admin import ReadOnlyAdmin, ServiceAdmin
from apps.core.errors import CarbonParkError
from apps.pulls.models import Connector, PullRun
from apps.pulls.services import check_config, reset_cursor, save_connector


class ConnectorForm(forms.ModelForm):
    secret = forms.CharField(
        label=_("token, API key or password"), required=False, strip=False, max_length=4096,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("Stored sealed and never shown again. Leave empty to keep the saved one."))

    class Meta:
        model = Connector
        fields = ["park", "name", "kind", "enabled", "interval_minutes", "settings", "mapping"]

    def clean_secret(self):
        value = self.cleaned_data.get("secret") or ""
        if "\x00" in value:
            raise ValidationError(_("The secret may not contain NUL characters."))
        return value

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            check_config(data.get("kind"), data.get("settings") or {}, data.get("mapping") or {})
        except CarbonParkError as exc:
            raise ValidationError(f"{exc.error.code}: {exc.error.message(get_language(), **exc.params)}") from None
        return data


@admin.register(Connector)
class ConnectorAdmin(PortalAdmin, ServiceAdmin):
    form = ConnectorForm
    list_display = ["name", "park", "kind", "enabled", "interval_minutes", "last_outcome", "next_run", "runs"]
    list_filter = ["park", "kind", "enabled"]
    search_fields = ["name"]
    readonly_fields = ["cursor", "next_run_at", "last_run_at", "last_error_code"]
    actions = ["pull_now", "clear_cursor"]

    def get_fields(self, request, obj=None):
        return [*ConnectorForm.Meta.fields, "secret", *self.readonly_fields]

    @admin.display(description=_("last run"))
    def last_outcome(self, obj):
        """When and how the last run ended: the time, then "done" or the error code (its message on hover)."""
        if obj.last_run_at is None:
            return "—"
        when = timezone.localtime(obj.last_run_at).strftime("%m-%d %H:%M")
        if not obj.last_error_code:
            return format_html("{} · {}", when, _("done"))
        from apps.core.errors import REGISTRY

        err = REGISTRY.get(obj.last_error_code)
        return format_html('{} · <span class="pull-error" title="{}">{}</span>', when,
                           err.message(get_language()) if err else "", obj.last_error_code)

    @admin.display(description=_("next run"), ordering="next_run_at")
    def next_run(self, obj):
        if not obj.enabled or obj.next_run_at is None:
            return "—"
        return timezone.localtime(obj.next_run_at).strftime("%m-%d %H:%M")

    @admin.display(description=_("run log"))
    def runs(self, obj):
        url = reverse("admin:pulls_pullrun_changelist") + f"?connector__id__exact={obj.pk}"
        return format_html('<a href="{}">{}</a>', url, _("runs"))

    def save_via_service(self, request, obj, form, change):
        fields = {k: form.cleaned_data[k] for k in ConnectorForm.Meta.fields}
        saved = save_connector(actor=request.user, connector=obj if change else None,
                               secret=form.cleaned_data.get("secret") or None, **fields)
        obj.pk = saved.pk

    @admin.action(description=_("Pull now"), permissions=["change"])
    def pull_now(self, request, queryset):
        from apps.pulls.tasks import run_pull

        pks = list(queryset.values_list("pk", flat=True))
        Connector.objects.filter(pk__in=pks).update(next_run_at=timezone.now())
        for pk in pks:
            transaction.on_commit(lambda pk=pk: run_pull.delay(pk))
        self.message_user(request, _("%(count)d pull(s) queued.") % {"count": len(pks)})

    @admin.action(description=_("Start again from the beginning (clear the cursor)"), permissions=["change"])
    def clear_cursor(self, request, queryset):
        for connector in queryset.select_related("park"):
            reset_cursor(actor=request.user, connector=connector, reason="portal")
        self.message_user(request, _("Cursor cleared; the next pull reads from the beginning, repeats are not "
                                     "stored twice."), messages.WARNING)


@admin.register(PullRun)
class PullRunAdmin(PortalAdmin, ReadOnlyAdmin):
    list_display = ["started_at", "connector", "mode", "state", "pulled", "accepted", "duplicates", "rejected",
                    "error_shown"]
    readonly_fields = ["connector", "mode", "window_from", "window_to", "state", "started_at", "finished_at", "pages",
                       "pulled", "accepted", "duplicates", "rejected", "cursor_before", "cursor_after", "error_detail"]
    exclude = ["error_params", "error_code"]
    list_filter = ["state", "mode", "connector"]
    list_select_related = ["connector"]
    search_fields = ["connector__name"]

    @admin.display(description=_("error"))
    def error_shown(self, obj):
        """The code, its message on hover (the run's own page shows it whole)."""
        if not obj.error_code:
            return "—"
        return format_html('<span class="pull-error" title="{}">{}</span>', obj.error_message(get_language()),
                           obj.error_code)

    @admin.display(description=_("error"))
    def error_detail(self, obj):
        return f"{obj.error_code} {obj.error_message(get_language())}" if obj.error_code else "—"
