"""Reads of forms and their published versions, scoped through ``apps.accounts.access`` (R-7.3.1, R-7.3.3).

The platform's default forms (no park) are shared: every signed-in principal may read them. A park's forms are
read by its members (VIEW: viewers, clerks, reviewers …); drafts are for those who may MANAGE the park."""

from __future__ import annotations

from django.db.models import OuterRef, Q, QuerySet, Subquery

from apps.accounts import access
from apps.accounts.access import Action
from apps.entry.models import Form, FormVersion


def forms_for(principal, action: Action = Action.VIEW, *, active_only: bool = True) -> QuerySet[Form]:
    """Forms ``principal`` may ``action``, each annotated with ``current_number``: its latest published version's
    number (None while unpublished). One query."""
    latest = FormVersion.objects.filter(form=OuterRef("pk")).order_by("-number").values("number")[:1]
    qs = Form.objects.select_related("park").annotate(current_number=Subquery(latest))
    if active_only:
        qs = qs.filter(is_active=True)
    return access.restrict(qs, principal, action)


def fillable_forms(principal, park) -> QuerySet[Form]:
    """Forms ``principal`` may fill in ``park`` (R-7.3.1.2): the park's own and the platform's defaults, active
    and published, when ``principal`` may ENTER there; none otherwise. Annotated like ``forms_for``."""
    if park is None or not access.check(principal, Action.ENTER, park):
        return Form.objects.none()
    park_id = getattr(park, "pk", park)
    return (forms_for(principal).filter(Q(park_id=park_id) | Q(park__isnull=True), current_number__isnull=False)
            .order_by("code"))


def versions_for(principal, action: Action = Action.VIEW) -> QuerySet[FormVersion]:
    return access.restrict(FormVersion.objects.select_related("form", "form__park"), principal, action)


def version(principal, code: str, number: int) -> FormVersion | None:
    """Version ``number`` of form ``code`` if ``principal`` may read it; None otherwise (unknown and not
    allowed look the same)."""
    return versions_for(principal).filter(form__code=code, number=number).first()


def current_version(form: Form) -> FormVersion | None:
    """The latest published version of ``form`` (unscoped: the caller has the form already)."""
    return form.versions.order_by("-number").first()
