"""The API's side of the park-access seam (R-7.1.2, R-7.3.3): each view names, per operation, the action of
``apps.accounts.access`` it needs, and one DRF permission class enforces it.

A view says::

    access_rules = {"list": Action.VIEW, "create": Action.MANAGE}           # a viewset: by its action names
    access_rules = {"GET": Action.VIEW, "GET format=csv": Action.EXPORT,     # an APIView: by method, with
                    "POST": Action.PUSH}                                     # variants by query parameter

A rule of ``SIGNED_IN`` (None) needs no park action: the operation shows no park data (the roles table, the
API index). Every operation a view serves must have a rule: one without is a server error here and fails
tests/test_api_access.py, which walks the URL configuration. docs/roles.md lists the rules (generated).

How the answers read, so that nothing answers differently for another park's object than for an unknown one:
- the principal has no park at all where it may do the action → 403 (E1008), whatever it asked for;
- an object the principal may not *view* → 404, exactly like an object that does not exist (querysets are
  ``access.restrict(…, VIEW)``);
- an object it may view but not act on → 403; a change that moves an object into another park needs the
  action there too (``access.require_move``, in the view).
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from rest_framework.permissions import BasePermission

from apps.accounts import access
from apps.accounts.access import Action

SIGNED_IN = None


def rule_key(view, method: str) -> str | None:
    """The key of ``access_rules`` for an operation: the viewset action's name, else the HTTP method. None
    when the view serves no such operation (answered 405 by the view)."""
    method = "GET" if method == "HEAD" else method
    if method.lower() not in view.http_method_names:
        return None
    action_map = getattr(view, "action_map", None)
    if action_map is not None:  # a viewset
        return action_map.get(method.lower())
    return method if hasattr(view, method.lower()) else None


def rule_for(view, method: str, params=None) -> Action | None:
    """The action an operation needs (``SIGNED_IN``: none). ``params``: the query parameters, for variants
    such as ``"GET format=csv"``."""
    key = rule_key(view, method)
    rules = getattr(view, "access_rules", None)
    if rules is None or key not in rules:
        raise ImproperlyConfigured(f"{type(view).__name__}.access_rules names no rule for {key or method}: "
                                   "add one (apps/accounts/permissions.py)")
    for variant, action in rules.items():
        base, _, cond = variant.partition(" ")
        name, _, value = cond.partition("=")
        if cond and base == key and params is not None and params.get(name) == value:
            return action
    return rules[key]


def access_model(view):
    """The model whose park rows an operation reads (``view.access_model``, else its serializer's)."""
    model = getattr(view, "access_model", None)
    if model is None and hasattr(view, "get_serializer_class"):
        model = getattr(getattr(view.get_serializer_class(), "Meta", None), "model", None)
    return model


class ParkAccess(BasePermission):
    """IsAuthenticated, then the operation's rule: the principal must hold the action in at least one park
    (or the rows are shared reference data and it only views them); objects are checked for their own park."""

    message = "not allowed"

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if request.method == "OPTIONS" or rule_key(view, request.method) is None:
            return True  # metadata shows no park data; an operation the view lacks is answered 405
        action = rule_for(view, request.method, request.query_params)
        if action is SIGNED_IN:
            return True
        model = access_model(view)
        if action is Action.VIEW and model is not None and access.path_of(model).shared:
            return True  # the standard's catalog: reference data every principal may read
        ids = access.park_ids(user, action)
        if ids is None or ids:
            return True
        self.message = f"you may not {action.value} in any park"
        return False

    def has_object_permission(self, request, view, obj):
        action = rule_for(view, request.method, request.query_params)
        if action is SIGNED_IN or request.method == "OPTIONS":
            return True
        if access.check_object(request.user, action, obj):
            return True
        self.message = f"you may not {action.value} in this park"
        return False
