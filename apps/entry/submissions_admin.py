"""Submissions in the portal (R-7.3.1.2–3, R-7.3.2): the park's list, "fill a form" (a form and a period picked,
then the filling page: static/entry/filling.js over the live-validation and draft API), the detail page with its
values as its own form version lays them out, evidence with SHA-256, versions (who, when, what, why), a diff of
any two versions, restore, and a reviewer's approve/return. Every write is a service call; every right is asked
of the access seam."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.middleware.csrf import get_token
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import get_language, gettext
from django.utils.translation import gettext_lazy as _

from apps.accounts import access
from apps.accounts.access import SESSION_PARK, Action
from apps.accounts.portal import NOBODY, PortalAdmin
from apps.core.errors import CarbonParkError
from apps.entry import selectors
from apps.entry.models import Submission
from apps.entry.services import submissions as services

REASONS = {"draft saved": _("draft saved"), "submitted": _("submitted"), "approved": _("approved"),
           "returned": _("returned")}  # the services' own reasons; a person's reason is shown as written
PERIOD_LABELS = {"day": _("day"), "month": _("month"), "quarter": _("quarter"), "year": _("year")}


def _lang() -> str:
    return get_language() or "zh-hans"


def _name(form, lang: str) -> str:
    return form.name_en if lang.startswith("en") and form.name_en else form.name_zh


def _period_text(value: str) -> str:
    """The period as typed (2026-11, 2026-Q4, 2026 or a date); the service reads it in the form's own period."""
    return (value or "").strip()[:20]


def _error_text(exc: CarbonParkError) -> str:
    return f"{exc.error.code}: {exc.error.message(_lang(), **exc.params)}"


@admin.register(Submission)
class SubmissionAdmin(PortalAdmin):
    """Submissions are made and changed on the filling page and decided on the detail page, never edited as
    model rows here."""

    add_action = NOBODY
    change_action = NOBODY
    delete_action = NOBODY
    list_display = ["id", "form_name", "park", "period_start", "state", "created_by_label", "submitted_at",
                    "reviewer_label", "open_link"]
    list_display_links = ["id"]
    list_filter = ["state"]
    list_select_related = ["form", "park", "version"]
    search_fields = ["form__code", "form__name_zh"]
    change_list_template = "admin/entry/submission/change_list.html"

    @admin.display(description=_("form"), ordering="form__code")
    def form_name(self, obj):
        return f"{_name(obj.form, _lang())} (v{obj.version.number})"

    @admin.display(description=_("open"))
    def open_link(self, obj):
        if obj.state in services.EDITABLE:
            return format_html('<a href="{}">{}</a>', reverse("admin:entry_submission_fill_one", args=[obj.pk]),
                               _("fill"))
        return "—"

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("fill/", wrap(self.fill_view), name="entry_submission_fill"),
            path("<path:object_id>/fill/", wrap(self.fill_one_view), name="entry_submission_fill_one"),
            path("<path:object_id>/diff/", wrap(self.diff_view), name="entry_submission_diff"),
            path("<path:object_id>/review/", wrap(self.review_view), name="entry_submission_review"),
            path("<path:object_id>/restore/", wrap(self.restore_view), name="entry_submission_restore"),
            path("<path:object_id>/attachment/<int:attachment_id>/", wrap(self.attachment_view),
                 name="entry_submission_attachment"),
            *super().get_urls(),
        ]

    # --- rights (the seam) ------------------------------------------------------------------------------

    def may_fill(self, request) -> bool:
        ids = access.park_ids(request.user, Action.ENTER)
        return ids is None or bool(ids)

    def may_edit(self, request, obj) -> bool:
        return obj.state in services.EDITABLE and access.check(request.user, Action.ENTER, obj.park_id)

    def may_review(self, request, obj) -> bool:
        return obj.state == Submission.State.SUBMITTED and obj.submitted_by_id != request.user.pk and \
            access.check(request.user, Action.APPROVE, obj.park_id, owner=obj.submitted_by)

    def _visible(self, request, object_id) -> Submission:
        obj = selectors.submission(request.user, unquote(object_id))
        if obj is None:
            raise Http404
        return obj

    def _context(self, request, title, **extra):
        return {**self.admin_site.each_context(request), "opts": self.model._meta, "title": title, **extra}

    # --- list and "fill a form" -----------------------------------------------------------------------

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {"may_fill": self.may_fill(request), **(extra_context or {})})

    def fill_view(self, request):
        """Pick a park, a form (``selectors.fillable_forms``) and a period; the submission of that form, park and
        period opens if there is one, else an empty filling page (the first autosave makes the draft)."""
        if not self.may_fill(request):
            raise PermissionDenied
        lang = _lang()
        parks = list(access.parks(request.user, Action.ENTER).order_by("code"))
        q = request.GET
        picked = request.session.get(SESSION_PARK)
        park = next((p for p in parks if p.code == q.get("park", "")[:32]), None) or \
            next((p for p in parks if p.pk == picked), None) or (parks[0] if parks else None)
        forms = list(selectors.fillable_forms(request.user, park)) if park else []
        form = next((f for f in forms if f.code == q.get("form", "")[:63]), None)
        period = _period_text(q.get("period", ""))
        error = None
        if form is not None and period:
            version = selectors.current_version(form)
            try:
                start = services.period_start(version.definition.get("period", "month"), period)
            except CarbonParkError as exc:
                error = _error_text(exc)
            else:
                existing = selectors.submissions_for(request.user).filter(form=form, park=park,
                                                                          period_start=start).first()
                if existing is not None:
                    return HttpResponseRedirect(reverse("admin:entry_submission_fill_one", args=[existing.pk])
                                                if existing.state in services.EDITABLE else
                                                reverse("admin:entry_submission_change", args=[existing.pk]))
                return self._filling_page(request, form=form, version=version, park=park, start=start, sub=None)
        elif q.get("form") and form is None:
            error = gettext("No form %(code)s you may fill in this park.") % {"code": q.get("form", "")[:63]}
        periods = selectors.current_periods(forms)
        choices = [{"code": f.code, "name": _name(f, lang), "number": f.current_number,
                    "period": PERIOD_LABELS.get(periods.get(f.pk, ""), "")} for f in forms]
        return TemplateResponse(request, "admin/entry/submission/pick.html", self._context(
            request, gettext("Fill a form"), parks=parks, park=park, forms=choices,
            form_code=form.code if form else "", period=q.get("period", "")[:20], error=error))

    def fill_one_view(self, request, object_id):
        sub = self._visible(request, object_id)
        if not self.may_edit(request, sub):
            return HttpResponseRedirect(reverse("admin:entry_submission_change", args=[sub.pk]))
        return self._filling_page(request, form=sub.form, version=sub.version, park=sub.park, start=sub.period_start,
                                  sub=sub)

    def _filling_page(self, request, *, form, version, park, start, sub):
        lang = _lang()
        attachments = [{"id": a.pk, "field": a.field, "name": a.original_name, "size": a.size, "sha256": a.sha256,
                        "url": reverse("admin:entry_submission_attachment", args=[sub.pk, a.pk])}
                       for a in sub.attachments.all()] if sub else []
        config = {
            "definition": version.definition, "version": version.number, "form": form.code, "park": park.code,
            "period": start.isoformat(), "values": sub.values if sub else {}, "submission": sub.pk if sub else None,
            "state": sub.state if sub else "draft", "lang": "en" if lang.startswith("en") else "zh",
            "attachments": attachments, "maxBytes": settings.EVIDENCE_MAX_BYTES, "csrf": get_token(request),
            "urls": {"validate": f"/api/v1/forms/{form.code}/validate", "drafts": "/api/v1/submissions",
                     "api": "/api/v1/submissions/", "page": reverse("admin:entry_submission_fill_one", args=[0]),
                     "detail": reverse("admin:entry_submission_change", args=[0])},
            "i18n": {
                "saved_at": gettext("Saved at %(time)s"), "saving": gettext("Saving…"),
                "not_saved": gettext("Not saved: %(reason)s"), "add_row": gettext("Add a row"),
                "remove_row": gettext("Remove"), "calculated": gettext("calculated"),
                "uploading": gettext("Uploading…"), "too_large": gettext("The file is larger than %(limit)s MB."),
                "wrong_type": gettext("Only PDF, PNG and JPEG files are accepted."),
                "errors": gettext("%(count)s field(s) need attention."), "no_errors": gettext("No errors."),
                "submitting": gettext("Submitting…"), "required": gettext("required"),
                "replace": gettext("Replace the file"), "attach": gettext("Attach a file"),
                "row": gettext("Row"), "warning": gettext("Warning"), "choose": gettext("— choose —"),
            },
        }
        title = f"{_name(form, lang)} · {start.isoformat()}"
        return TemplateResponse(request, "admin/entry/submission/fill.html", self._context(
            request, title, config=config, sub=sub, park=park, form=form, version=version, start=start,
            period_label=PERIOD_LABELS.get(version.definition.get("period", "month"), "")))

    # --- detail, diff ---------------------------------------------------------------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, unquote(object_id))  # scoped through the seam
        if obj is None or not self.has_view_permission(request, obj):
            return super().change_view(request, object_id, form_url, extra_context)
        lang = _lang()
        versions = selectors.versions_of(obj)
        rows = [{"number": n, "at": h.history_date, "by": h.history_user.get_username() if h.history_user else "—",
                 "state": Submission.State(h.state).label if h.state in Submission.State.values else h.state,
                 "reason": REASONS.get(h.history_change_reason or "", h.history_change_reason or "")}
                for n, h in versions]
        pending = obj.readings.filter(correction__isnull=False).count()
        a, b = selectors.default_pair(versions)
        context = self._context(
            request, f"{_name(obj.form, lang)} · {obj.period_start.isoformat()} ({obj.get_state_display()})",
            original=obj, sections=selectors.rendered_values(obj, lang), versions=rows[::-1],
            latest=len(rows), diff_a=a, diff_b=b, attachments=list(obj.attachments.all()), stored=obj.readings.count(),
            pending=pending, may_edit=self.may_edit(request, obj), may_review=self.may_review(request, obj),
            fill_url=reverse("admin:entry_submission_fill_one", args=[obj.pk]))
        return TemplateResponse(request, "admin/entry/submission/detail.html", context)

    def diff_view(self, request, object_id):
        """Two versions side by side (R-7.3.2): ``?a=&b=``, by default the last two."""
        sub = self._visible(request, object_id)
        versions = selectors.versions_of(sub)
        count = len(versions)
        first_a, first_b = selectors.default_pair(versions)
        a, b = request.GET.get("a", ""), request.GET.get("b", "")
        a = int(a) if a.isdigit() and len(a) < 9 else first_a
        b = int(b) if b.isdigit() and len(b) < 9 else first_b
        rows = selectors.diff(sub, a, b)
        if rows is None:
            raise Http404
        lang = _lang()
        fields = {f["key"]: f for s in sub.version.definition.get("sections") or [] for f in s.get("fields") or []}
        attachments = {str(x.pk): x for x in sub.attachments.all()}
        states = dict(Submission.State.choices)
        for r in rows:
            r["label_text"] = selectors._pick(r["label"], lang) if isinstance(r["label"], dict) else str(r["label"])
            f = fields.get(r["path"].rpartition(".")[2].split("[")[0])
            for side in ("a", "b"):
                v = r[side]
                r[f"{side}_text"] = "—" if v is None else (str(states.get(v, v)) if r["path"] == "@state" else
                                                           selectors._shown(f or {}, v, attachments, lang))
        who = {n: h for n, h in versions}
        heads = {side: {"at": who[n].history_date, "by": who[n].history_user.get_username() if who[n].history_user
                        else "—", "reason": REASONS.get(who[n].history_change_reason or "",
                                                        who[n].history_change_reason or "")}
                 for side, n in (("a", a), ("b", b))}
        context = self._context(request, gettext("Versions %(a)s and %(b)s of submission #%(id)s")
                                % {"a": a, "b": b, "id": sub.pk}, original=sub, rows=rows, a=a, b=b, heads=heads,
                                numbers=range(1, count + 1), changed=sum(1 for r in rows if r["changed"]))
        return TemplateResponse(request, "admin/entry/submission/diff.html", context)

    # --- writes: review, restore ------------------------------------------------------------------------

    def review_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        sub = self._visible(request, object_id)
        approve = request.POST.get("decision") == "approve"
        comment = request.POST.get("comment", "")
        try:
            if approve:
                services.approve(actor=request.user, submission_id=sub.pk, comment=comment)
            else:
                services.return_submission(actor=request.user, submission_id=sub.pk, comment=comment)
        except access.AccessDenied:
            raise PermissionDenied from None
        except CarbonParkError as exc:
            if exc.http_status == 403:
                raise PermissionDenied from None
            messages.error(request, _error_text(exc))
        else:
            messages.success(request, gettext("Submission approved.") if approve
                             else gettext("Submission returned to its clerk."))
        return HttpResponseRedirect(reverse("admin:entry_submission_change", args=[sub.pk]))

    def restore_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        sub = self._visible(request, object_id)
        number = request.POST.get("version", "")
        try:
            services.restore(actor=request.user, submission_id=sub.pk,
                             version=int(number) if number.isdigit() and len(number) < 9 else -1,
                             reason=request.POST.get("reason", "")[:100])
        except access.AccessDenied:
            raise PermissionDenied from None
        except CarbonParkError as exc:
            messages.error(request, _error_text(exc))
        else:
            messages.success(request, gettext("Version %(n)s restored as a new version.") % {"n": number})
        return HttpResponseRedirect(reverse("admin:entry_submission_change", args=[sub.pk]))

    def attachment_view(self, request, object_id, attachment_id):
        """An evidence file, to whoever may view its submission (a download, never rendered in the portal)."""
        sub = self._visible(request, object_id)
        att = sub.attachments.filter(pk=attachment_id).first()
        if att is None:
            raise Http404
        return FileResponse(att.file.open("rb"), as_attachment=True, filename=att.original_name,
                            content_type=att.content_type)
