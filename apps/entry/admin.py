"""Forms in the portal (R-7.3.1): the draft definition as JSON, a "publish" action, a park's own copy of a
default form, and the published versions (read-only). The visual designer (apps/entry/designer.py) has
its page and JSON views here too."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from apps.accounts import access
from apps.accounts.access import Action
from apps.accounts.audit_admin import AuditHistoryMixin
from apps.accounts.portal import NOBODY, PortalAdmin
from apps.core.admin import ReadOnlyAdmin, ServiceAdmin
from apps.core.errors import CarbonParkError
from apps.entry import services
from apps.entry.catalog import catalog_lookup
from apps.entry.definitions import check_definition
from apps.entry.models import FORM_CODE_RE, Form, FormVersion


def _lang() -> str:
    return get_language() or "zh-hans"


def starter_definition(name_zh: str, name_en: str = "") -> dict:
    """What a new form starts with when it is added without a definition: one section with a remarks field,
    for the designer to build on (a definition needs at least one section with one field)."""
    title = {"zh": name_zh, **({"en": name_en} if name_en else {})}
    return {"format": 1, "period": "month", "title": title, "sections": [
        {"key": "main", "title": {"zh": "基本信息", "en": "General"},
         "fields": [{"key": "remarks", "type": "text", "label": {"zh": "备注", "en": "Remarks"}}]}]}


class FormForm(forms.ModelForm):
    class Meta:
        model = Form
        fields = ["park", "code", "name_zh", "name_en", "is_active", "definition"]
        widgets = {"definition": forms.Textarea(attrs={"rows": 30, "cols": 100, "spellcheck": "false"})}

    def clean(self):
        data = super().clean()
        if not self.instance.pk and data.get("definition") in ({}, None, "") and data.get("name_zh"):
            data["definition"] = starter_definition(data["name_zh"], data.get("name_en", ""))
        if "definition" in data:
            park = data.get("park", self.instance.park if self.instance.pk else None)
            problems = check_definition(data["definition"], catalog_lookup(park))
            for p in problems[:20]:
                self.add_error("definition", f"{p.path}: {p.error.code} {p.error.message(_lang(), **p.params)}")
        return data


@admin.register(Form)
class FormAdmin(AuditHistoryMixin, PortalAdmin, ServiceAdmin):
    form = FormForm
    delete_action = NOBODY  # a form is made inactive, never deleted: submissions point at its versions
    list_display = ["code", "name", "park", "current", "is_active", "updated_at", "copy_link"]  # + the designer's
    list_filter = ["is_active", "park"]
    list_select_related = ["park"]
    search_fields = ["code", "name_zh", "name_en"]
    actions = ["publish"]

    def get_readonly_fields(self, request, obj=None):
        return ["park", "code"] if obj is not None else []

    def get_queryset(self, request):
        from django.db.models import Max

        return super().get_queryset(request).annotate(current_number=Max("versions__number"))

    @admin.display(description=_("name"))
    def name(self, obj):
        return obj.name_en if _lang().startswith("en") and obj.name_en else obj.name_zh

    @admin.display(description=_("published version"), ordering="current_number")
    def current(self, obj):
        return obj.current_number or "-"

    def get_list_display(self, request):
        """The designer's link only on forms the user may MANAGE (the seam; the platform's default forms are the
        system administrator's: a park copies one to change it)."""

        @admin.display(description=_("designer"))
        def design_link(obj):
            if not access.check(request.user, Action.MANAGE, obj.park_id):
                return "-"
            return format_html('<a href="{}">{}</a>', reverse("admin:entry_form_design", args=[obj.pk]),
                               _("design"))

        columns = list(super().get_list_display(request))
        return columns[:-1] + [design_link] + columns[-1:]

    @admin.display(description=_("copy"))
    def copy_link(self, obj):
        return format_html('<a href="{}">{}</a>', reverse("admin:entry_form_copy", args=[obj.pk]),
                           _("copy to a park"))

    def response_add(self, request, obj, post_url_continue=None):
        """A new form opens in the designer (unless "add another" was asked for)."""
        if "_addanother" not in request.POST and "_popup" not in request.POST:
            return HttpResponseRedirect(reverse("admin:entry_form_design", args=[obj.pk]))
        return super().response_add(request, obj, post_url_continue)

    def save_via_service(self, request, obj, form, change):
        data = form.cleaned_data
        try:
            if change:
                saved = services.save_draft(actor=request.user, form=obj, definition=data["definition"],
                                            name_zh=data["name_zh"], name_en=data["name_en"],
                                            is_active=data["is_active"])
            else:
                saved = services.create_form(actor=request.user, park=data.get("park"), code=data["code"],
                                             name_zh=data["name_zh"], name_en=data["name_en"],
                                             definition=data["definition"])
        except CarbonParkError as exc:
            from django.core.exceptions import ValidationError

            raise ValidationError(exc.error.message(_lang(), **exc.params)) from exc
        obj.pk = saved.pk

    @admin.action(description=_("Publish the selected forms' drafts as new versions"), permissions=["change"])
    def publish(self, request, queryset):
        for form in queryset:
            try:
                version = services.publish(actor=request.user, form=form)
            except services.DefinitionError as exc:
                shown = "; ".join(f"{p.path}: {p.error.message(_lang(), **p.params)}" for p in exc.problems[:5])
                self.message_user(request, _("%(code)s was not published: %(problems)s")
                                  % {"code": form.code, "problems": shown}, messages.ERROR)
                continue
            self.message_user(request, _("%(code)s: version %(number)s (SHA-256 %(hash)s…)")
                              % {"code": form.code, "number": version.number, "hash": version.content_hash[:12]},
                              messages.SUCCESS)

    # --- a park's own copy ---------------------------------------------------------------------------------

    def get_urls(self):
        from apps.entry import designer as d

        return [path("<path:object_id>/copy/", self.admin_site.admin_view(self.copy_view), name="entry_form_copy"),
                path("<path:object_id>/design/", d.view(self, d.design_view, "GET"), name="entry_form_design"),
                path("<path:object_id>/design/check/", d.view(self, d.check_view, "POST"),
                     name="entry_form_design_check"),
                path("<path:object_id>/design/save/", d.view(self, d.save_view, "POST"), name="entry_form_design_save"),
                path("<path:object_id>/design/publish/", d.view(self, d.publish_view, "POST"),
                     name="entry_form_design_publish"),
                *super().get_urls()]

    def copy_view(self, request, object_id):
        source = get_object_or_404(self.get_queryset(request), pk=object_id)  # scoped: VIEW through the seam
        parks = access.parks(request.user, Action.MANAGE).order_by("code")
        if not parks.exists():
            raise PermissionDenied
        form = CopyForm(request.POST or None, parks=parks, initial={"name_zh": source.name_zh,
                                                                    "name_en": source.name_en})
        if request.method == "POST" and form.is_valid():
            try:
                copy = services.copy_form(actor=request.user, source=source, park=form.cleaned_data["park"],
                                          code=form.cleaned_data["code"], name_zh=form.cleaned_data["name_zh"],
                                          name_en=form.cleaned_data["name_en"])
            except CarbonParkError as exc:
                form.add_error("code" if exc.field == "code" else None, exc.error.message(_lang(), **exc.params))
            else:
                self.message_user(request, _("Copied %(source)s to %(copy)s: edit its draft and publish it.")
                                  % {"source": source.code, "copy": copy.code}, messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:entry_form_change", args=[copy.pk]))
        context = {**self.admin_site.each_context(request), "title": _("Copy form %(code)s") % {"code": source.code},
                   "form": form, "source": source, "opts": self.model._meta}
        return TemplateResponse(request, "admin/entry/form/copy.html", context)


class CopyForm(forms.Form):
    park = forms.ModelChoiceField(queryset=None, label=_("park"))
    code = forms.RegexField(regex=FORM_CODE_RE, max_length=63, label=_("new code"),
                            help_text=_("lower-case letters, digits, - and _; unique on the platform"))
    name_zh = forms.CharField(max_length=100, label=_("name (Chinese)"))
    name_en = forms.CharField(max_length=100, required=False, label=_("name (English)"))

    def __init__(self, *args, parks, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["park"].queryset = parks


@admin.register(FormVersion)
class FormVersionAdmin(PortalAdmin, ReadOnlyAdmin):
    list_display = ["form", "number", "content_hash", "published_at", "published_by_label"]
    list_filter = ["form__park"]
    list_select_related = ["form", "form__park"]
    search_fields = ["form__code", "content_hash"]
    readonly_fields = ["form", "number", "content_hash", "published_at", "published_by", "published_by_label",
                       "definition"]
from apps.entry import submissions_admin  # noqa: E402,F401 - registers the submissions pages
