"""The portal's role matrix page (R-7.3.3): the published roles and what each may do, the user's own marked."""

from django.contrib import admin
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

from apps.accounts import access


def roles_view(request):
    """Renders ``access.matrix_rows()``; the rows of the roles the user holds (in any park) are highlighted."""
    mine = {role.code for role in access.roles_by_park(request.user).values()}
    if access.is_system(request.user):
        mine.add(access.SYSTEM.code)
    marks = {"✓": _("yes"), "own": _("own entries"), "others'": _("others' only"), "": ""}
    rows = [{"role": role, "mine": role.code in mine, "kind": role.kind,
             "cells": [{"mark": m, "label": marks.get(m, m)} for m in cells]}
            for role, cells in access.matrix_rows()]
    parks = access.parks(request.user).order_by("code") if not access.is_system(request.user) else None
    memberships = ([(p, access.role_in(request.user, p)) for p in parks] if parks is not None else [])
    context = {
        **admin.site.each_context(request),
        "title": _("Roles and permissions"),
        "actions": [access.ACTION_LABELS[a] for a in access.Action],
        "rows": rows,
        "memberships": memberships,
        "is_system": access.is_system(request.user),
    }
    return TemplateResponse(request, "admin/roles.html", context)
