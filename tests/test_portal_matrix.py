"""The portal's permission matrix, generated (issue #8): every model registered on the admin site
(admin.site._registry) x changelist/change/add/delete/history x each role x an object of the user's park,
of another park and shared, answered as the park-access seam (apps/accounts/access.py) says.

The expected answers come from ``access.restrict`` over the database and each admin's declared actions
(``view_action``, ``add_action``... of apps/accounts/portal.py, ``ReadOnlyAdmin``); the portal itself
decides through ``check_object``, so the two paths check each other. One world for the module (built once,
rolled back at the end); one client per role."""

from __future__ import annotations

import re

import pytest
from django.contrib import admin
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.accounts import access
from apps.accounts.access import Action
from apps.accounts.portal import NOBODY, PERMISSION_METHODS, SYSTEM_ONLY, PortalAdmin
from apps.core.admin import ReadOnlyAdmin
from tests.portal_world import ROLES, build_world

REGISTRY = sorted(admin.site._registry.items(), key=lambda kv: kv[0]._meta.label)


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), transaction.atomic():
        yield build_world()
        transaction.set_rollback(True)


@pytest.fixture(scope="module")
def clients(world):
    out = {}
    for role, user in world.users.items():
        out[role] = Client()
        out[role].force_login(user)
    return out


def test_every_registered_admin_goes_through_the_seam():
    """A model registered without PortalAdmin, or without a park path, fails here; so does an admin that
    overrides the seam's methods in front of it."""
    problems = []
    for model, model_admin in REGISTRY:
        label = model._meta.label_lower
        if not isinstance(model_admin, PortalAdmin):
            problems.append(f"{label}: {type(model_admin).__name__} does not inherit PortalAdmin")
            continue
        if label not in access.PARK_PATHS:
            problems.append(f"{label}: no park path in apps/accounts/access.py")
        mro = type(model_admin).__mro__
        for klass in mro[: mro.index(PortalAdmin)]:
            overridden = set(vars(klass)) & set(PERMISSION_METHODS) - {"get_queryset"}
            if overridden and klass.__module__ != "apps.accounts.portal":
                problems.append(f"{label}: {klass.__name__} overrides {sorted(overridden)} in front of the seam")
            if "get_queryset" in vars(klass):
                # allowed only as a refinement that starts from super().get_queryset (checked in the matrix)
                pass
    assert problems == []


# --- the oracle -------------------------------------------------------------------------------------------


def declared(model_admin, kind):
    if isinstance(model_admin, ReadOnlyAdmin):
        return NOBODY
    return getattr(model_admin, f"{kind}_action")


def may(user, action, model, obj=None) -> bool:
    if action == NOBODY:
        return False
    if access.is_system(user):
        return True
    if action == SYSTEM_ONLY:
        return False
    spec = access.path_of(model)
    if spec.path is None and (not spec.shared or action is not Action.VIEW):
        return False
    parks = [pid for pid in access.park_ids(user, action) if access.check(user, action, pid)]  # no owners yet
    if obj is None:
        return (spec.shared and action is Action.VIEW) or bool(parks)
    return access.restrict(model._default_manager.filter(pk=obj.pk), user, action, within=parks).exists()


def positions(model, world) -> dict:
    """An object of park A (the roles' own), of park B (another) and a shared one, as the model has."""
    spec = access.path_of(model)
    qs = model._default_manager.order_by("pk")
    root = world.users["system"]
    if spec.path is None:
        return {"any": qs.first()}
    out = {}
    for name, park in (("own", world.park_a), ("other", world.park_b)):
        sub = access.restrict(qs, root, Action.VIEW, within=[park.pk])
        if spec.shared and isinstance(spec.path, str):
            sub = sub.exclude(**{f"{spec.path}__isnull": True})
        out[name] = sub.first()
    if spec.shared and isinstance(spec.path, str):
        out["shared"] = qs.filter(**{f"{spec.path}__isnull": True}).first()
    return out


def url(model, view, obj=None):
    meta = model._meta
    base = f"/{meta.app_label}/{meta.model_name}/"
    return {"changelist": base, "add": f"{base}add/", "change": f"{base}{obj and obj.pk}/change/",
            "delete": f"{base}{obj and obj.pk}/delete/", "history": f"{base}{obj and obj.pk}/history/"}[view]


@pytest.mark.django_db
@pytest.mark.parametrize("model,model_admin", REGISTRY, ids=[m._meta.label for m, _ in REGISTRY])
def test_admin_matrix(world, clients, model, model_admin):
    objects = positions(model, world)
    assert all(objects.values()), f"the test world has no {model._meta.label} for {objects}"
    wrong = []

    def expect(role, view, where, status, allowed, response):
        if allowed is True and status != 200:
            wrong.append(f"{role} {view} {where}: {status}, expected 200")
        if allowed is False and status not in (302, 403, 404):
            wrong.append(f"{role} {view} {where}: {status}, expected refused")

    for role in ROLES:
        user, client = world.users[role], clients[role]
        access.forget(user)
        can_view = may(user, model_admin.view_action, model)
        r = client.get(url(model, "changelist"))
        expect(role, "changelist", "-", r.status_code, can_view, r)
        if r.status_code == 200:
            # a stock changelist's rows, or those a custom one (the audit browser) starts from
            shown = r.context["cl"].queryset if "cl" in r.context else model_admin.get_queryset(r.wsgi_request)
            for where, obj in objects.items():
                if shown.filter(pk=obj.pk).exists() != may(user, model_admin.view_action, model, obj):
                    wrong.append(f"{role} changelist shows {where} object: {not may(user, Action.VIEW, model, obj)}")
        r = client.get(url(model, "add"))
        expect(role, "add", "-", r.status_code, may(user, declared(model_admin, "add"), model), r)
        for where, obj in objects.items():
            visible = may(user, model_admin.view_action, model, obj)
            r = client.get(url(model, "change", obj))
            expect(role, "change", where, r.status_code, visible, r)
            if r.status_code == 200:
                can_save = may(user, declared(model_admin, "change"), model, obj)
                if ('name="_save"' in r.content.decode()) != can_save:
                    wrong.append(f"{role} change {where}: save button shown = {not can_save}")
            r = client.get(url(model, "delete", obj))
            expect(role, "delete", where, r.status_code,
                   visible and may(user, declared(model_admin, "delete"), model, obj), r)
            r = client.get(url(model, "history", obj))
            expect(role, "history", where, r.status_code,
                   visible and may(user, model_admin.history_action, model, obj), r)
    assert wrong == []


@pytest.mark.django_db
def test_roles_in_the_matrix_mean_what_the_issue_says(world):
    """The declarations the matrix trusts, spelled out once: readings and logs are read-only for everyone;
    an auditor writes nothing anywhere; plumbing is the system administrator's alone."""
    auditor = world.users["auditor"]
    for model, model_admin in REGISTRY:
        label = model._meta.label_lower
        for kind in ("add", "change", "delete"):
            assert not may(auditor, declared(model_admin, kind), model), (label, kind)
        if label.startswith(("ingestion.", "sources.devicestate", "sources.statechange", "core.auditentry")):
            assert all(declared(model_admin, k) == NOBODY for k in ("add", "change", "delete")), label
        if label.startswith(("django_celery_beat.", "auth.", "ingestion.idempotencykey", "core.configversion")):
            assert all(not may(world.users[r], model_admin.view_action, model) for r in ROLES[:-1]), label


# --- query counts ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_changelists_take_a_constant_number_of_queries(world):
    """Every changelist a scoped user opens costs the same number of queries for 1 row as for every row
    (no query per row): park A's administrator who also views park B."""
    from apps.accounts.services import set_membership

    user = world.users["admin"]
    set_membership(actor="test", user=user, park=world.park_b, role="viewer")
    access.forget(user)
    client = Client()
    client.force_login(user)
    checked = []
    for model, model_admin in REGISTRY:
        if not may(user, model_admin.view_action, model):
            continue
        path = url(model, "changelist")
        if "cl" not in client.get(path).context:
            continue  # a page of its own (the audit browser: cursor-paged, its own query-count test)
        counts, rows = [], []
        saved = model_admin.list_per_page
        try:
            for per_page in (1, 100):
                model_admin.list_per_page = per_page
                client.get(path)  # warm caches (content types, sessions)
                with CaptureQueriesContext(connection) as ctx:
                    r = client.get(path)
                assert r.status_code == 200, (path, r.status_code)
                counts.append(len(ctx.captured_queries))
                rows.append(len(r.context["cl"].result_list))
        finally:
            model_admin.list_per_page = saved
        assert rows[1] >= 2, f"{path}: the world shows {rows[1]} row(s); the guard needs several"
        assert counts[0] == counts[1], f"{path}: {counts[0]} queries for 1 row, {counts[1]} for {rows[1]}"
        checked.append(path)
    assert len(checked) >= 15, checked


# --- the takeover through the admin form (issue #8's hostile review) ---------------------------------------


def form_data(response) -> dict:
    form = response.context["adminform"].form
    data = {}
    for name in form.fields:
        value = form[name].value()
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        elif isinstance(value, list | tuple):
            data[name] = [str(v) for v in value]
        elif value is not None:
            data[name] = str(value)
    return data


@pytest.mark.django_db
def test_admin_form_takeover_of_another_parks_source_is_refused(world):
    from apps.accounts.services import set_membership
    from apps.sources.models import DataSource

    user = world.users["admin"]  # administrator of A
    set_membership(actor="test", user=user, park=world.park_b, role="viewer")  # and a viewer of B
    client = Client()
    client.force_login(user)
    root = Client()
    root.force_login(world.users["system"])
    theirs = DataSource.objects.filter(park=world.park_b).first()
    ours = DataSource.objects.filter(park=world.park_a).first()

    page = client.get(url(DataSource, "change", theirs))
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()  # B: read-only for A's admin
    data = form_data(root.get(url(DataSource, "change", theirs)))
    data["park"] = str(world.park_a.pk)
    r = client.post(url(DataSource, "change", theirs), data)
    assert r.status_code == 403
    theirs.refresh_from_db()
    assert theirs.park_id == world.park_b.pk

    # The other way: A's source given away to B (where this user only views) is refused too.
    data = form_data(root.get(url(DataSource, "change", ours)))
    data["park"] = str(world.park_b.pk)
    r = client.post(url(DataSource, "change", ours), data)
    assert r.status_code in (200, 403)
    if r.status_code == 200:
        assert "park" in r.context["adminform"].form.errors  # B is not among the choices
    ours.refresh_from_db()
    assert ours.park_id == world.park_a.pk

    # With the right in both parks the same move goes through: the refusals above are the seam's.
    set_membership(actor="test", user=user, park=world.park_b, role="admin")
    r = client.post(url(DataSource, "change", ours), data)
    assert r.status_code == 302, r.content.decode()[:2000]
    ours.refresh_from_db()
    assert ours.park_id == world.park_b.pk


@pytest.mark.django_db
def test_switcher_narrows_changelists_and_refuses_foreign_parks(world, clients):
    from apps.accounts.services import set_membership
    from apps.sources.models import DataSource

    user = world.users["auditor"]
    set_membership(actor="test", user=user, park=world.park_b, role="viewer")
    client = Client()
    client.force_login(user)
    page = client.get("/sources/datasource/")
    assert set(page.context["cl"].queryset.values_list("park_id", flat=True)) == {world.park_a.pk, world.park_b.pk}
    html = page.content.decode()
    assert 'id="park-select"' in html and re.search(f'<option value="{world.park_b.pk}"', html)
    r = client.post("/switch-park/", {"park": world.park_b.pk, "next": "/sources/datasource/"})
    assert r.status_code == 302 and r["Location"] == "/sources/datasource/"
    page = client.get("/sources/datasource/")
    assert set(page.context["cl"].queryset.values_list("park_id", flat=True)) == {world.park_b.pk}
    # an object page of the other park still opens (the switcher narrows lists, not rights)
    ours = DataSource.objects.filter(park=world.park_a).first()
    assert client.get(url(DataSource, "change", ours)).status_code == 200
    # back to all parks; a park the user is not in is refused
    assert client.post("/switch-park/", {"park": ""}).status_code == 302
    assert len(set(client.get("/sources/datasource/").context["cl"].queryset.values_list("park_id", flat=True))) == 2
    viewer = clients["viewer"]
    assert viewer.post("/switch-park/", {"park": world.park_b.pk}).status_code == 403
    assert viewer.get("/switch-park/").status_code == 405
    assert client.post("/switch-park/", {"park": "", "next": "https://evil.example/"})["Location"] == "/"


@pytest.mark.django_db
def test_members_sign_in_without_is_staff_and_others_do_not(world):
    from django.contrib.auth import get_user_model

    from tests.portal_world import PASSWORD

    get_user_model().objects.create_user("nobody", "n@example.invalid", PASSWORD, is_staff=True)
    for username, allowed in (("viewer-a", True), ("nobody", False)):
        client = Client()
        r = client.post("/login/?next=/", {"username": username, "password": PASSWORD, "next": "/"})
        assert (r.status_code == 302) == allowed, (username, r.status_code)
        assert (client.get("/").status_code == 200) == allowed
    assert not world.users["viewer"].is_staff


@pytest.mark.django_db
def test_history_versions_are_scoped_like_their_objects(world, clients):
    """simple-history's page of one past version (/<pk>/history/<version>/) follows the object's park."""
    from apps.sources.models import DataSource

    for park, allowed in ((world.park_a, True), (world.park_b, False)):
        source = DataSource.objects.filter(park=park).first()
        version = source.history.order_by("history_id").first()
        path = f"/sources/datasource/{source.pk}/history/{version.history_id}/"
        assert (clients["auditor"].get(path).status_code == 200) == allowed, path
        assert clients["viewer"].get(path).status_code == 403, path  # no AUDIT: no history, even its own park
        r = clients["auditor"].post(path, {"name": "reverted"})
        assert r.status_code == 403, path  # reverting is a change


@pytest.mark.django_db
def test_choices_offer_only_what_the_user_may_write(world, clients):
    """Park and source boxes of a park administrator's forms, the membership form's people, the
    autocomplete: park A's only (never park B's, never a superuser)."""
    from apps.accounts.models import Park
    from apps.sources.models import DataSource

    admin_a = clients["admin"]
    form = admin_a.get("/sources/datasource/add/").context["adminform"].form
    assert set(form.fields["park"].queryset) == {world.park_a}
    form = admin_a.get("/sources/command/add/").context["adminform"].form
    assert set(form.fields["source"].queryset) == set(DataSource.objects.filter(park=world.park_a))
    people = set(admin_a.get("/accounts/membership/add/").context["adminform"].form.fields["user"].queryset
                 .values_list("username", flat=True))
    assert "viewer-b" not in people and "root" not in people and "auditor-a" in people
    answer = admin_a.get("/autocomplete/", {"term": "", "app_label": "accounts", "model_name": "membership",
                                            "field_name": "park"}).json()
    assert [r["id"] for r in answer["results"]] == [str(world.park_a.pk)]
    # the readings browser's park filter lists the user's parks only
    page = admin_a.get("/ingestion/reading/")
    assert world.park_b.name_zh not in page.content.decode()
    assert Park.objects.count() >= 2
