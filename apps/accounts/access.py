"""THE park-access seam (R-7.1.2, R-7.3.3): who may do what in which park.

Every query of park data is ``restrict(qs, principal, action)``; every write checks
``check``/``require(principal, action, park)`` for the park it touches now and, when an object moves, the
park it would touch after (``require_move``). A principal is a user (session or API) or an API token's
principal (``apps.accounts.authentication.TokenPrincipal``).

Memberships are the one source of truth: a user's role in a park gives the actions of that role's row in
``ROLES``. ``apps.accounts.services`` mirrors each grant as django-guardian per-park object permissions
(``accounts.park_<action>``) in the same transaction, so guardian's pages and DRF's object-permission
filters agree with this module; this module itself reads memberships (one query per principal, cached on
the principal for the request).

Objects that belong to a park are filtered by their park through ``PARK_PATHS`` (one registry, extended by
later apps with ``register``), never by per-object permission rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass
from enum import StrEnum

from django.core.exceptions import PermissionDenied
from django.db.models import Model, Q, QuerySet
from django.utils.translation import gettext_lazy as _


class Action(StrEnum):
    VIEW = "view"  # read the park's data, sources, alarms
    PUSH = "push"  # send readings through a machine channel (HTTP, MQTT, files from a system)
    ENTER = "enter"  # manual entry: fill and submit forms, upload files
    MODIFY = "modify"  # change entries and stored data (corrections as requests)
    DELETE = "delete"  # delete entries
    APPROVE = "approve"  # approve or reject submissions and corrections of others
    AUDIT = "audit"  # read history and the audit trail
    EXPORT = "export"  # download data and the audit trail
    MANAGE = "manage"  # sources, rules, forms, members and tokens of the park

ACTION_LABELS = {
    Action.VIEW: _("view"), Action.PUSH: _("push readings"), Action.ENTER: _("enter data"),
    Action.MODIFY: _("modify"), Action.DELETE: _("delete"), Action.APPROVE: _("approve"),
    Action.AUDIT: _("read history and audit trail"), Action.EXPORT: _("export"), Action.MANAGE: _("manage park"),
}


class Scope(StrEnum):
    """How far a role's action reaches within a park it belongs to."""

    ALL = "all"
    OWN = "own"  # only the principal's own (unsubmitted) entries
    OTHERS = "others"  # only what others submitted: nobody approves their own


@dataclass(frozen=True)
class Role:
    code: str
    label: object
    kind: str  # "member" (a Membership role), "token" (an API token role) or "system"
    actions: dict  # Action -> Scope


A, OWN, X = Scope.ALL, Scope.OWN, Scope.OTHERS

# The published matrix (docs/roles.md is generated from it: `manage.py access_matrix --write`).
# Membership.Role and ApiToken.Role values are the codes of the member and token rows.
ROLES: dict[str, Role] = {r.code: r for r in [
    Role("viewer", _("viewer"), "member", {Action.VIEW: A}),
    Role("operator", _("data-entry clerk"), "member",
         {Action.VIEW: A, Action.PUSH: A, Action.ENTER: A, Action.MODIFY: OWN, Action.DELETE: OWN}),
    Role("approver", _("reviewer / approver"), "member", {Action.VIEW: A, Action.APPROVE: X}),
    Role("auditor", _("auditor"), "member", {Action.VIEW: A, Action.AUDIT: A, Action.EXPORT: A}),
    Role("admin", _("park administrator"), "member",
         {Action.VIEW: A, Action.PUSH: A, Action.ENTER: A, Action.MODIFY: A, Action.DELETE: A,
          Action.AUDIT: A, Action.EXPORT: A, Action.MANAGE: A}),
    Role("integrator", _("integrator token"), "token",
         {Action.VIEW: A, Action.PUSH: A, Action.EXPORT: A, Action.MANAGE: A}),
    Role("device", _("device token"), "token", {Action.PUSH: A}),
    Role("system", _("system administrator"), "system", {a: (X if a is Action.APPROVE else A) for a in Action}),
]}

SYSTEM = ROLES["system"]


def role_of_token(token) -> Role:
    return ROLES[token.role]


class SystemPrincipal:
    """A trusted process acting for the platform, on behalf of no one: a manage.py command, a Celery task, a
    consumer loop. It may do everything in every park, like a system administrator; processes that pass a
    principal to the seam use one to say so (``SystemPrincipal("manage.py sync_park_permissions")``)."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = True
    token = None
    pk = None

    def __init__(self, label: str):
        self.audit_label = label

    def get_username(self) -> str:
        return self.audit_label

    def __str__(self):
        return self.audit_label


def is_system(principal) -> bool:
    """A superuser: every park, every action (approving its own work excepted)."""
    return bool(principal is not None and getattr(principal, "is_superuser", False)
                and getattr(principal, "is_active", False) and getattr(principal, "token", None) is None)


def _token(principal):
    return getattr(principal, "token", None)


_CACHE_ATTR = "_cp_access_roles"


def roles_by_park(principal) -> dict[int, Role]:
    """park id -> the principal's role there (one query per principal, cached on it)."""
    if principal is None or not getattr(principal, "is_authenticated", False) or not principal.is_active:
        return {}
    cached = getattr(principal, _CACHE_ATTR, None)
    if cached is not None:
        return cached
    token = _token(principal)
    if token is not None:
        roles = {token.park_id: role_of_token(token)}
    else:
        from apps.accounts.models import Membership

        roles = {park_id: ROLES[role] for park_id, role in
                 Membership.objects.filter(user_id=principal.pk).values_list("park_id", "role")}
    with suppress(AttributeError):  # a principal that takes no attributes is simply not cached
        setattr(principal, _CACHE_ATTR, roles)
    return roles


def forget(principal) -> None:
    """Drop the cached roles (after a grant or revoke within the same request or test)."""
    if principal is not None and hasattr(principal, _CACHE_ATTR):
        delattr(principal, _CACHE_ATTR)


def role_in(principal, park) -> Role | None:
    if is_system(principal):
        return SYSTEM
    return roles_by_park(principal).get(_park_id(park))


def _park_id(park) -> int | None:
    return park if isinstance(park, int) or park is None else park.pk


def _same(principal, owner) -> bool:
    if owner is None:
        return False
    if isinstance(owner, str):
        label = getattr(principal, "audit_label", None) or getattr(principal, "get_username", lambda: None)()
        return owner == label
    return getattr(owner, "pk", owner) == getattr(principal, "pk", None) and _token(principal) is None


def check(principal, action: Action | str, park, *, owner=None) -> bool:
    """May ``principal`` do ``action`` in ``park`` (a Park or its id)? ``owner`` is who made the object
    concerned, for the actions whose scope is OWN (a clerk's own unsubmitted entries) or OTHERS (nobody
    approves their own submission)."""
    action = Action(action)
    if park is None:
        return is_system(principal)
    role = role_in(principal, park)
    scope = role.actions.get(action) if role else None
    if scope is None:
        return False
    if scope is Scope.OWN:
        return _same(principal, owner)
    if scope is Scope.OTHERS:
        return owner is None or not _same(principal, owner)
    return True


class AccessDenied(PermissionDenied):
    """Raised by ``require``; DRF answers 403 and the admin its permission-denied page."""


def require(principal, action: Action | str, *parks, owner=None) -> None:
    """``check`` for every park given (the park an object is in now and the one it would be in after)."""
    for park in parks:
        if not check(principal, action, park, owner=owner):
            where = "the platform's shared data" if park is None else f"park {getattr(park, 'code', park)}"
            raise AccessDenied(f"not allowed to {Action(action).value} {where}")


def require_move(principal, action: Action | str, current_park, new_park) -> None:
    """A change that moves an object between parks needs the right in both."""
    parks = [current_park] if _park_id(current_park) == _park_id(new_park) else [current_park, new_park]
    require(principal, action, *parks)


def actions_in(principal, park) -> frozenset[Action]:
    """The actions ``principal`` has in ``park`` in any scope (what guardian's ``park_<action>`` rows mirror;
    the scope itself, own or others', is only this module's to judge)."""
    role = role_in(principal, park) if park is not None else (SYSTEM if is_system(principal) else None)
    return frozenset(role.actions) if role else frozenset()


PERMISSION_PREFIX = "park_"


def permission_codename(action: Action | str) -> str:
    """The django-guardian object permission on a Park that mirrors ``action`` (``accounts.park_view`` …)."""
    return PERMISSION_PREFIX + Action(action).value


def park_ids(principal, action: Action | str) -> list[int] | None:
    """Ids of the parks where ``principal`` may do ``action`` (any scope); ``None`` means every park."""
    action = Action(action)
    if is_system(principal):
        return None
    return sorted(pid for pid, role in roles_by_park(principal).items() if action in role.actions)


def parks(principal, action: Action | str = Action.VIEW) -> QuerySet:
    from apps.accounts.models import Park

    ids = park_ids(principal, action)
    return Park.objects.all() if ids is None else Park.objects.filter(pk__in=ids)


# --- the registry: how each model reaches its park --------------------------------------------------


@dataclass(frozen=True)
class ParkPath:
    """``path``: the lookup from the model to its park's id (``"park"``, ``"source__park"``) or a callable
    ``(ids) -> Q``. ``shared``: rows with no park (the standard's catalog items, platform-wide rules) are
    visible to every authenticated principal for VIEW, and writable only by system administrators.
    ``path=None``: platform plumbing, system administrators only."""

    path: str | Callable[[list[int]], Q] | None
    shared: bool = False


PARK_PATHS: dict[str, ParkPath] = {}


def register(model: type[Model] | str, path, *, shared: bool = False) -> None:
    label = model if isinstance(model, str) else model._meta.label_lower
    PARK_PATHS[label.lower()] = ParkPath(path, shared)


def _audit_parks(ids: list[int]) -> Q:
    from apps.accounts.models import Park

    return Q(park_code__in=Park.objects.filter(pk__in=ids).values("code"))


for _label, _path, _shared in [
    ("accounts.park", "pk", False), ("accounts.membership", "park", False), ("accounts.apitoken", "park", False),
    ("sources.datasource", "park", False), ("sources.command", "source__park", False),
    ("sources.devicestate", "source__park", False), ("sources.statechange", "source__park", False),
    ("sources.sourcekey", lambda ids: Q(park__in=ids) | Q(source__park__in=ids), False),
    ("ingestion.reading", "park", False), ("ingestion.rollup", "park", False), ("ingestion.ingestbatch", "park", False),
    ("ingestion.rejection", "park", False), ("ingestion.validationevent", "batch__park", False),
    ("ingestion.idempotencykey", None, False),
    ("corrections.correction", "park", False), ("corrections.evidence", "park", False),
    ("corrections.revision", "park", False), ("uploads.upload", "park", False),
    ("quality.rule", "park", True), ("quality.alarm", "park", False), ("quality.gap", "park", False),
    ("quality.posthit", "park", False), ("quality.balancegroup", "park", False),
    ("quality.balancemember", "group__park", False),
    ("catalog.dataitem", "park", True), ("catalog.catalogclass", "park", True),
    ("catalog.enumeration", None, True), ("catalog.enumvalue", None, True),
    ("entry.form", "park", True), ("entry.formversion", "form__park", True),
    ("entry.submission", "park", False), ("entry.historicalsubmission", "park", False),
    ("entry.attachment", "park", False), ("entry.usednumber", "park", False),
    ("entry.submissionreading", "park", False),
    ("core.auditentry", _audit_parks, False), ("core.configversion", None, False),
    # Registered on the portal by Django and third-party apps: platform plumbing, system administrators only.
    ("auth.user", None, False), ("auth.group", None, False),
    ("django_celery_beat.periodictask", None, False), ("django_celery_beat.intervalschedule", None, False),
    ("django_celery_beat.crontabschedule", None, False), ("django_celery_beat.solarschedule", None, False),
    ("django_celery_beat.clockedschedule", None, False),
]:
    register(_label, _path, shared=_shared)


def path_of(model: type[Model]) -> ParkPath:
    try:
        return PARK_PATHS[model._meta.label_lower]
    except KeyError:
        raise LookupError(f"{model._meta.label} has no park path: register it in apps.accounts.access") from None


def restrict(qs: QuerySet, principal, action: Action | str = Action.VIEW, *, within=None) -> QuerySet:
    """The rows of ``qs`` in parks where ``principal`` may do ``action`` (R-7.3.3). A constant number of
    queries whatever the number of rows: the park ids are read once per principal.

    ``within``: park ids to narrow to further (the portal's park switcher, ``portal_park_ids``); rows of
    no park (shared rows, platform plumbing) are not narrowed by it."""
    spec = path_of(qs.model)
    action = Action(action)
    ids = park_ids(principal, action)
    if within is not None:
        ids = list(within) if ids is None else [i for i in ids if i in set(within)]
    if ids is None:
        return qs
    shared_view = spec.shared and action is Action.VIEW and bool(getattr(principal, "is_authenticated", False))
    if spec.path is None:
        return qs if shared_view or is_system(principal) else qs.none()
    if callable(spec.path):
        return qs.filter(spec.path(ids))
    cond = Q(**{f"{spec.path}__in": ids})
    if shared_view:
        cond |= Q(**{f"{spec.path}__isnull": True})
    return qs.filter(cond)


def park_of(obj: Model):
    """The park id an object belongs to, following its registered path (None for shared rows)."""
    spec = path_of(type(obj))
    if spec.path is None or callable(spec.path):
        park = getattr(obj, "park_id", None)
        if park is None and getattr(obj, "source_id", None) is not None:
            park = obj.source.park_id
        if park is None and getattr(obj, "park_code", ""):  # audit entries name their park by code
            from apps.accounts.models import Park

            park = Park.objects.filter(code=obj.park_code).values_list("pk", flat=True).first()
        return park
    if spec.path == "pk":
        return obj.pk
    target = obj
    for part in spec.path.split("__")[:-1]:
        target = getattr(target, part)
        if target is None:
            return None
    return getattr(target, spec.path.split("__")[-1] + "_id")


def check_object(principal, action: Action | str, obj: Model, *, owner=None) -> bool:
    """``check`` for the park ``obj`` is in (shared rows: VIEW for all, anything else system only)."""
    park = park_of(obj)
    if park is None:
        spec = path_of(type(obj))
        if spec.shared and Action(action) is Action.VIEW:
            return bool(getattr(principal, "is_authenticated", False))
        return is_system(principal)
    return check(principal, action, park, owner=owner)


# --- the portal's current park (the park switcher) --------------------------------------------------

SESSION_PARK = "cp_park"


def portal_park_ids(request, action: Action | str = Action.VIEW) -> list[int] | None:
    """The parks the portal shows: the one picked in the park switcher when it is still allowed, else every
    park the user may ``action`` in (``None``: all parks, for a system administrator with no pick)."""
    allowed = park_ids(request.user, action)
    picked = request.session.get(SESSION_PARK) if hasattr(request, "session") else None
    if picked is not None and (allowed is None or picked in allowed):
        return [picked]
    return allowed


def matrix_rows(roles: Iterable[Role] | None = None) -> list[tuple[Role, list[str]]]:
    """The role × action matrix as marks: "✓", "own", "others' only", "" (docs and the portal)."""
    marks = {Scope.ALL: "✓", Scope.OWN: "own", Scope.OTHERS: "others'"}
    return [(role, [marks.get(role.actions.get(a), "") for a in Action]) for role in (roles or ROLES.values())]
