"""Writes of form definitions: drafts, publishing, copies (R-7.3.1). Each checks the seam for the park it
touches and records the change in the audit trail."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from apps.accounts import access
from apps.accounts.access import Action
from apps.core.errors import CarbonParkError
from apps.core.services import actor_fields, record_change
from apps.entry import errors
from apps.entry.catalog import catalog_lookup
from apps.entry.definitions import check_definition, content_hash, resolve
from apps.entry.models import Form, FormVersion


def _now():
    """Whole seconds: a published version serialised and written back (fixtures, tests' restored databases) is
    the same row, which the immutability trigger lets through (JSON keeps milliseconds at most)."""
    return timezone.now().replace(microsecond=0)


class DefinitionError(CarbonParkError):
    """A definition with problems; ``problems`` lists them all (``Problem.as_dict()`` for an answer)."""

    def __init__(self, problems):
        self.problems = list(problems)
        first = self.problems[0]
        super().__init__(first.error, field=first.path, **first.params)

    def as_dict(self) -> dict:
        body = super().as_dict()
        body["problems"] = [p.as_dict() for p in self.problems]
        return body


def _summary(form: Form) -> dict:
    return {"code": form.code, "park": form.park.code if form.park_id else None, "name_zh": form.name_zh,
            "name_en": form.name_en, "is_active": form.is_active, "definition_hash": content_hash(form.definition)}


def _park_code(form: Form) -> str:
    return form.park.code if form.park_id else ""


def check(definition, park=None) -> None:
    """Raise ``DefinitionError`` unless ``definition`` may be used in ``park`` (None: the platform)."""
    problems = check_definition(definition, catalog_lookup(park))
    if problems:
        raise DefinitionError(problems)


@transaction.atomic
def create_form(*, actor, park, code: str, name_zh: str, name_en: str = "", definition: dict,
                reason: str = "") -> Form:
    """A new form of ``park`` (None: a platform default, system administrators only) with ``definition`` as its
    draft (R-7.3.1)."""
    access.require(actor, Action.MANAGE, park)
    if Form.objects.filter(code=code).exists():
        raise CarbonParkError(errors.E8207, field="code", code=code)
    check(definition, park)
    user = actor_fields(actor)["actor"]
    form = Form(park=park, code=code, name_zh=name_zh, name_en=name_en, definition=definition, created_by=user,
                updated_by=user)
    form.full_clean()
    form.save()
    record_change(actor=actor, action="form.create", obj=form, after=_summary(form), reason=reason,
                  park_code=_park_code(form))
    return form


@transaction.atomic
def save_draft(*, actor, form: Form, definition: dict | None = None, name_zh: str | None = None,
               name_en: str | None = None, is_active: bool | None = None, reason: str = "") -> Form:
    """Replace the draft of ``form`` (and its names, or whether it is offered) after checking the definition
    against the schema, the park's catalog and the operator whitelist (R-7.3.1). Clerks keep filling the
    published version until the draft is published."""
    access.require(actor, Action.MANAGE, form.park_id)
    form = Form.objects.select_for_update().get(pk=form.pk)
    before = _summary(form)
    if definition is not None:
        check(definition, form.park)
        form.definition = definition
    for name, value in (("name_zh", name_zh), ("name_en", name_en), ("is_active", is_active)):
        if value is not None:
            setattr(form, name, value)
    form.updated_by = actor_fields(actor)["actor"]
    form.full_clean()
    form.save()
    after = _summary(form)
    if after != before:
        record_change(actor=actor, action="form.update", obj=form, before=before, after=after, reason=reason,
                      park_code=_park_code(form))
    return form


@transaction.atomic
def publish(*, actor, form: Form, reason: str = "") -> FormVersion:
    """Freeze the draft of ``form`` as its next immutable version, with its items' catalog attributes resolved
    into it and the SHA-256 of its canonical JSON (R-7.3.1). A draft whose resolved content equals the latest
    version's returns that version: publishing twice makes one version."""
    access.require(actor, Action.MANAGE, form.park_id)
    form = Form.objects.select_for_update(of=("self",)).select_related("park").get(pk=form.pk)
    lookup = catalog_lookup(form.park)
    problems = check_definition(form.definition, lookup)
    if problems:
        raise DefinitionError(problems)
    resolved = resolve(form.definition, lookup)
    digest = content_hash(resolved)
    latest = form.versions.order_by("-number").first()
    if latest is not None and latest.content_hash == digest:
        return latest
    fields = actor_fields(actor)
    version = FormVersion.objects.create(form=form, number=(latest.number + 1) if latest else 1,
                                         definition=resolved, content_hash=digest, published_at=_now(),
                                         published_by=fields["actor"], published_by_label=fields["actor_label"])
    record_change(actor=actor, action="form.publish", obj=version,
                  after={"form": form.code, "number": version.number, "content_hash": digest}, reason=reason,
                  park_code=_park_code(form))
    return version


@transaction.atomic
def copy_form(*, actor, source: Form, park, code: str, name_zh: str | None = None, name_en: str | None = None,
              reason: str = "") -> Form:
    """A park's own copy of ``source`` (a platform default or another form the actor may read): its draft,
    under a new code, to edit and publish (R-7.3.1, issue #10 item 3)."""
    if not access.check_object(actor, Action.VIEW, source):
        raise access.AccessDenied(f"not allowed to view form {source.code}")
    return create_form(actor=actor, park=park, code=code, name_zh=name_zh or source.name_zh,
                       name_en=source.name_en if name_en is None else name_en, definition=source.definition,
                       reason=reason or f"copy of {source.code}")
