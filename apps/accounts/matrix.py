"""The published role matrix (R-7.3.3): roles × actions from ``access.ROLES`` and the API operations with the
action each needs, read from the views' ``access_rules`` over the URL configuration. One source for
docs/roles.md (``manage.py access_matrix``), ``GET /api/v1/roles`` and tests/test_api_access.py."""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from rest_framework.schemas.generators import EndpointEnumerator

from apps.accounts import access
from apps.accounts.access import ACTION_LABELS, Action, Scope

SCOPE_LABELS = {
    Scope.ALL: _("everything in the park"),
    Scope.OWN: _("only its own unsubmitted entries"),
    Scope.OTHERS: _("only what others submitted, never its own"),
}
KIND_LABELS = {"member": _("membership role"), "token": _("API token role"), "system": _("platform")}
API_PREFIX = "/api/v1/"


@dataclass(frozen=True)
class Endpoint:
    """One operation of the API: ``key`` is its ``access_rules`` key (viewset action or method),
    ``variant`` a query condition such as ``format=csv`` ("" for the plain operation)."""

    path: str
    method: str
    name: str
    view: type | None
    key: str
    variant: str = ""

    @property
    def rules(self) -> dict | None:
        return getattr(self.view, "access_rules", None)

    @property
    def has_rule(self) -> bool:
        rules = self.rules
        return rules is not None and self.rule_name in rules

    @property
    def rule_name(self) -> str:
        return f"{self.key} {self.variant}" if self.variant else self.key

    @property
    def action(self) -> Action | None:
        return self.rules[self.rule_name]

    @property
    def shared(self) -> bool:
        """A read of shared reference rows (the standard's catalog): open to every signed-in caller, the
        rows of its parks added for those who hold ``view`` there."""
        from apps.accounts.permissions import access_model

        model = access_model(self.view()) if self.view is not None else None
        return self.action is Action.VIEW and model is not None and access.path_of(model).shared

    @property
    def public(self) -> bool:
        from rest_framework.permissions import AllowAny

        return self.view is not None and any(p is AllowAny for p in self.view.permission_classes)


def _walk(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), p


def api_endpoints(prefix: str = API_PREFIX) -> list[Endpoint]:
    """Every operation under ``prefix`` in the URL configuration (format-suffix duplicates left out; HEAD
    is GET's, OPTIONS is metadata). A view that is not a DRF view comes back with ``view=None``: it would
    bypass the seam, and the tests refuse it."""
    enum = EndpointEnumerator()
    out: dict[tuple[str, str, str], Endpoint] = {}
    for regex, pattern in _walk(get_resolver().url_patterns):
        path = enum.get_path_from_regex(regex)
        if not path.startswith(prefix) or "{format}" in path:
            continue
        cls = getattr(pattern.callback, "cls", None)
        if cls is None:
            out[(path, "*", "")] = Endpoint(path, "*", pattern.name or "", None, "")
            continue
        actions = getattr(pattern.callback, "actions", None)
        if actions is not None:
            methods = {m.upper(): a for m, a in actions.items() if m in cls.http_method_names and m != "head"}
        else:
            methods = {m: m for m in cls().allowed_methods if m not in ("HEAD", "OPTIONS")}
        for method, key in methods.items():
            variants = [""] + [k.partition(" ")[2] for k in (getattr(cls, "access_rules", None) or {})
                               if " " in k and k.partition(" ")[0] == key]
            for variant in variants:
                out[(path, method, variant)] = Endpoint(path, method, pattern.name or "", cls, key, variant)
    order = {"GET": 0, "POST": 1, "PUT": 2, "PATCH": 3, "DELETE": 4}
    return sorted(out.values(), key=lambda e: (e.path, order.get(e.method, 9), e.variant))


def roles_may(action: Action | None) -> list[str]:
    """The codes of the roles that hold ``action`` in some scope (every role when no park action is needed)."""
    return [r.code for r in access.ROLES.values() if action is None or action in r.actions]


def roles_text(e: Endpoint) -> str:
    if e.action is None:
        return "all"
    text = ", ".join(roles_may(e.action))
    return f"all (the standard's rows); park-defined rows: {text}" if e.shared else text


def _both(label) -> dict:
    with translation.override("zh-hans"):
        zh = str(label)
    with translation.override("en"):
        en = str(label)
    return {"label_zh": zh, "label_en": en}


def as_json() -> dict:
    """The matrix for ``GET /api/v1/roles`` (and the portal): actions, scopes, roles, API operations."""
    endpoints = []
    for e in api_endpoints():
        if not e.has_rule:
            continue
        action = e.action
        endpoints.append({"path": e.path, "method": e.method, "variant": e.variant,
                          "action": action.value if action else None, "public": e.public, "shared": e.shared,
                          "roles": roles_may(action)})
    return {
        "actions": [{"code": a.value, "label": str(ACTION_LABELS[a]), **_both(ACTION_LABELS[a])} for a in Action],
        "scopes": [{"code": s.value, "label": str(SCOPE_LABELS[s]), **_both(SCOPE_LABELS[s])} for s in Scope],
        "roles": [{"code": r.code, "kind": r.kind, "label": str(r.label), **_both(r.label),
                   "actions": {a.value: r.actions[a].value for a in Action if a in r.actions}}
                  for r in access.ROLES.values()],
        "endpoints": endpoints,
    }
