"""The portal (the Django admin at the site root) scoped per park and role (R-7.3.3, issue #8).

Every ModelAdmin on the site goes through ``PortalAdmin``: its rows are ``access.restrict``-ed, its
permissions are ``access.check``/``check_object`` on the object's park, a save that moves an object
between parks needs the right in both (``access.require_move``), and the choices it offers (parks,
sources, catalog items) are the ones the user may write. Our admins inherit it explicitly; the ones Django
and third-party apps register (auth, django_celery_beat) are wrapped by ``adopt``
(called by ``carbonpark.apps.PortalAdminConfig``).

``PortalSite`` lets in every active user with a membership (no ``is_staff``), puts the park switcher in
every page's context and serves the switch itself (``SESSION_PARK``).
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.admin.options import InlineModelAdmin
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.autocomplete import AutocompleteJsonView
from django.contrib.admin.views.main import ChangeList
from django.contrib.admin.widgets import AutocompleteSelect, AutocompleteSelectMultiple
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import MaxLengthValidator
from django.db import models
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _

from apps.accounts import access
from apps.accounts.access import SESSION_PARK, Action
from apps.core.forms import SafeJSONFormField
from carbonpark.admin_site import LandingPagesMixin

SYSTEM_ONLY = "system"  # an add/change/delete action only system administrators have
NOBODY = "nobody"  # read-only for everyone (logs and stored data)

PERMISSION_METHODS = ("get_queryset", "has_view_permission", "has_add_permission", "has_change_permission",
                      "has_delete_permission", "has_module_permission", "save_form")


def _user(request):
    return request.user


def spec_of(model):
    return access.path_of(model)


def is_plumbing(model) -> bool:
    """Platform plumbing: rows of no park that are not shared reference data (system administrators only)."""
    spec = spec_of(model)
    return spec.path is None and not spec.shared


def writable_choices(request, related_qs, action):
    """The rows of a related model a form may point at: those in parks where the user may ``action``, plus
    shared reference rows (standard catalog items, platform-wide rules) that everyone may use."""
    user = _user(request)
    if access.is_system(user):
        return related_qs
    label = related_qs.model._meta.label_lower
    if label not in access.PARK_PATHS:
        return related_qs
    spec = access.PARK_PATHS[label]
    if action in (SYSTEM_ONLY, NOBODY, None):
        action = Action.MANAGE
    if spec.path is None:
        return related_qs if spec.shared else related_qs.none()
    scoped = access.restrict(related_qs, user, action)
    if spec.shared and isinstance(spec.path, str):
        scoped = scoped | related_qs.filter(**{f"{spec.path}__isnull": True})
    return scoped


class ScopedRelatedFilter(admin.RelatedFieldListFilter):
    """A list filter over a related park-scoped model (park, source) that lists only rows the user may see
    (the stock filter lists every park of the platform)."""

    def field_choices(self, field, request, model_admin):
        qs = access.restrict(field.related_model._default_manager.all(), _user(request), Action.VIEW)
        ordering = self.field_admin_ordering(field, request, model_admin) or qs.model._meta.ordering or ["pk"]
        return [(obj.pk, str(obj)) for obj in qs.order_by(*ordering)]


class PortalChangeList(ChangeList):
    """A changelist follows the park switcher; object pages do not (a link to another of the user's
    parks still opens)."""

    def get_queryset(self, request, exclude_parameters=None):
        picked = access.portal_park_ids(request, self.model_admin.view_action)
        if picked is not None:
            self.root_queryset = access.restrict(self.root_queryset, _user(request), self.model_admin.view_action,
                                                 within=picked)
        return super().get_queryset(request, exclude_parameters)


_CHANGELISTS: dict = {}


class _SafeAutocomplete:
    """Django's autocomplete box looks the posted value up to show it again: a value that is no id at all
    (``"\x00"``, ``"abc"`` for an integer key) raised there, so a form that should have come back with
    "select a valid choice" answered 500. Values the key field cannot take are not looked up."""

    def optgroups(self, name, value, attr=None):
        remote = self.field.remote_field
        key = remote.model._meta.get_field(getattr(remote, "field_name", None) or remote.model._meta.pk.name)
        usable = []
        for v in value:
            try:
                key.to_python(v)
                key.get_prep_value(key.to_python(v))
            except (ValidationError, ValueError, TypeError, OverflowError):
                continue
            usable.append(v)
        return super().optgroups(name, usable, attr)


class SafeAutocompleteSelect(_SafeAutocomplete, AutocompleteSelect):
    pass


class SafeAutocompleteSelectMultiple(_SafeAutocomplete, AutocompleteSelectMultiple):
    pass


class PortalAdmin(admin.ModelAdmin):
    """The seam in the admin. Declare what a model needs:

    ``view_action``: to see its rows (VIEW; AUDIT for the audit trail);
    ``add_action``/``change_action``/``delete_action``: an ``Action`` checked in the object's park (MANAGE by
    default), ``SYSTEM_ONLY`` or ``NOBODY``; a base class below this one (``ReadOnlyAdmin``) that forbids it
    is respected as well; ``history_action``: to read its history (AUDIT).

    Superusers keep the stock behaviour (Django's own permission checks, every park), narrowed only by the
    park switcher on changelists."""

    formfield_overrides = {models.JSONField: {"form_class": SafeJSONFormField}}


    view_action = Action.VIEW
    add_action = Action.MANAGE
    change_action = Action.MANAGE
    delete_action = Action.MANAGE
    history_action = Action.AUDIT

    # --- helpers -------------------------------------------------------------------------------

    def _stock(self, name, request, *args):
        """What the classes after PortalAdmin in the MRO say (``ReadOnlyAdmin`` forbids writes); Django's
        own model-permission check counts as "yes": the seam replaces it for park staff."""
        mro = type(self).__mro__
        for klass in mro[mro.index(PortalAdmin) + 1:]:
            if name in vars(klass):
                if klass.__module__.startswith(("django.contrib.admin", "simple_history.admin")):
                    return True
                return vars(klass)[name](self, request, *args)
        return True

    def may(self, request, action, obj=None) -> bool:
        """``action`` (an Action, SYSTEM_ONLY or NOBODY) on ``obj``, or on some object of the model."""
        user = _user(request)
        if action == NOBODY:
            return False
        if access.is_system(user):
            return True
        spec = spec_of(self.model)
        if action == SYSTEM_ONLY or is_plumbing(self.model) or (spec.path is None and action is not Action.VIEW):
            return False  # plumbing, and shared rows of no park (enumerations): the system administrator's
        if obj is None:
            if spec.shared and action is Action.VIEW:
                return True
            return bool(self._parks_for(request, action))
        if callable(spec.path):  # the path cannot be walked back from the object: ask the database
            return access.restrict(self.model._default_manager.filter(pk=obj.pk), user, action).exists()
        return access.check_object(user, action, obj, owner=self.owner_of(obj))

    owner_field: str | None = None  # the field naming who made a row, for the actions scoped to one's own

    def owner_of(self, obj):
        """Who made ``obj``, for the actions whose scope is the principal's own (entries, later)."""
        return getattr(obj, self.owner_field) if self.owner_field else None

    def _parks_for(self, request, action) -> list[int]:
        """Parks where ``action`` applies to this model's rows: a scope of one's own rows counts only for
        models whose rows have an owner (a clerk acknowledges no alarm)."""
        user = _user(request)
        ids = access.park_ids(user, action) or []
        return ids if self.owner_field else [pid for pid in ids if access.check(user, action, pid)]

    @property
    def choice_action(self):
        """What a form's choices (parks, sources) need: the right to write there."""
        for action in (self.change_action, self.add_action):
            if isinstance(action, Action):
                return action
        return Action.MANAGE

    def _system(self, request) -> bool:
        return access.is_system(_user(request))

    # --- rows ---------------------------------------------------------------------------------------

    def get_queryset(self, request):
        return access.restrict(super().get_queryset(request), _user(request), self.view_action)

    def get_changelist(self, request, **kwargs):
        base = super().get_changelist(request, **kwargs)
        if issubclass(base, PortalChangeList):
            return base
        if base not in _CHANGELISTS:
            _CHANGELISTS[base] = type("Portal" + base.__name__, (PortalChangeList, base), {})
        return _CHANGELISTS[base]

    def get_list_select_related(self, request):
        """Every foreign key the list shows, nullable ones included (Django's default follows only the
        non-null ones: a row's park or source would cost a query each)."""
        chosen = super().get_list_select_related(request)
        if chosen is not False:
            return chosen
        fields = {f.name: f for f in self.model._meta.get_fields() if f.many_to_one or f.one_to_one}
        return [name for name in self.get_list_display(request) if isinstance(name, str) and name in fields
                and fields[name].concrete] or False

    def get_list_filter(self, request):
        """Filters over a related park-scoped model list only what the user may see."""
        filters = []
        for item in super().get_list_filter(request):
            if isinstance(item, str) and "__" not in item:
                field = self.model._meta.get_field(item)
                if field.is_relation and field.related_model._meta.label_lower in access.PARK_PATHS:
                    item = (item, ScopedRelatedFilter)
            filters.append(item)
        return filters

    # --- permissions -------------------------------------------------------------------------------

    def has_module_permission(self, request):
        if self._system(request):
            return super().has_module_permission(request)
        return self.may(request, self.view_action)

    def has_view_permission(self, request, obj=None):
        if self._system(request):
            return super().has_view_permission(request, obj)
        return self.may(request, self.view_action, obj)

    def has_add_permission(self, request, *args):
        if self._system(request):
            return super().has_add_permission(request, *args) and self.add_action != NOBODY
        return self.may(request, self.add_action) and self._stock("has_add_permission", request, *args)

    def has_change_permission(self, request, obj=None):
        if self._system(request):
            return super().has_change_permission(request, obj) and self.change_action != NOBODY
        return self.may(request, self.change_action, obj) and self._stock("has_change_permission", request, obj)

    def has_delete_permission(self, request, obj=None):
        if self._system(request):
            return super().has_delete_permission(request, obj) and self.delete_action != NOBODY
        return self.may(request, self.delete_action, obj) and self._stock("has_delete_permission", request, obj)

    # simple-history: its history pages (the list and each version) need the history action, in the park
    def has_view_history_or_change_history_permission(self, request, obj=None):
        return self.may(request, self.history_action, obj)

    def history_view(self, request, object_id, extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        if obj is not None and not self.may(request, self.history_action, obj):
            raise PermissionDenied
        return super().history_view(request, object_id, extra_context)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        """simple-history's page of one version; posting it reverts the object, a change."""
        if request.method == "POST" and not self.has_change_permission(
                request, self.get_object(request, unquote(object_id))):
            raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)

    # --- writes -----------------------------------------------------------------------------------

    def require_write(self, request, obj, change):
        """The save as it would be: the right in the object's park as stored and in its park after
        (``access.require_move``); shared rows (no park) only for system administrators."""
        user = _user(request)
        if access.is_system(user):
            return
        action = self.change_action if change else self.add_action
        if not isinstance(action, Action):
            raise access.AccessDenied("not allowed here")
        new_park = access.park_of(obj)
        old_park = new_park
        if change and obj.pk is not None:
            stored = self.model._default_manager.filter(pk=obj.pk).first()
            if stored is not None:
                old_park = access.park_of(stored)
        for park in {old_park, new_park}:
            if park is None:
                raise access.AccessDenied("only system administrators change shared rows")
        access.require_move(user, action, old_park, new_park)

    def save_form(self, request, form, change):
        obj = super().save_form(request, form, change)
        self.require_write(request, obj, change)
        return obj

    def response_action(self, request, queryset):
        """Bulk actions act only on the selected rows the user may change (delete) in their parks."""
        if not self._system(request):
            action = self.delete_action if request.POST.get("action") == "delete_selected" else self.change_action
            queryset = (access.restrict(queryset, _user(request), action, within=self._parks_for(request, action))
                        if isinstance(action, Action) else queryset.none())
        return super().response_action(request, queryset)

    # --- choices --------------------------------------------------------------------------------------

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if "queryset" not in kwargs and not self._system(request):
            qs = self.get_field_queryset(None, db_field, request)
            if qs is None:
                qs = db_field.remote_field.model._default_manager.all()
            kwargs["queryset"] = writable_choices(request, qs, self.choice_action)
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = SafeAutocompleteSelect(db_field, self.admin_site, using=kwargs.get("using"))
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if field is not None and db_field.name == "park" and not self._system(request):
            # a row of no park is platform-wide, the system administrator's: park staff must name their
            # park, told at the field rather than refused after the post
            field.required = True
        return field

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if "queryset" not in kwargs and not self._system(request):
            qs = self.get_field_queryset(None, db_field, request)
            if qs is None:
                qs = db_field.remote_field.model._default_manager.all()
            kwargs["queryset"] = writable_choices(request, qs, self.choice_action)
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = SafeAutocompleteSelectMultiple(db_field, self.admin_site, using=kwargs.get("using"))
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class PortalInline(InlineModelAdmin):
    """Inline rows are read and written with the rights on their parent object."""

    def _parent(self):
        return self.admin_site._registry[self.parent_model]

    def has_view_permission(self, request, obj=None):
        if access.is_system(_user(request)):
            return super().has_view_permission(request, obj)
        return self._parent().has_view_permission(request, obj)

    def has_add_permission(self, request, obj=None):
        if access.is_system(_user(request)):
            return super().has_add_permission(request, obj)
        return self._parent().has_change_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        if access.is_system(_user(request)):
            return super().has_change_permission(request, obj)
        return self._parent().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if access.is_system(_user(request)):
            return super().has_delete_permission(request, obj)
        return self._parent().has_change_permission(request, obj)


class PortalTabularInline(PortalInline, admin.TabularInline):
    pass


class PortalAutocompleteView(AutocompleteJsonView):
    """Autocomplete boxes feed a form: they offer only what the form may point at."""

    def get_queryset(self):
        qs = super().get_queryset()
        referring = self.admin_site._registry.get(self.source_field.model)
        action = getattr(referring, "choice_action", Action.MANAGE)
        return writable_choices(self.request, qs, action)


class PortalAuthenticationForm(AdminAuthenticationForm):
    """Park staff sign in without ``is_staff``: a membership (or being a superuser) is what lets one in."""

    # Django's form only sets the username's max_length as an attribute (no validator): a 20 000-character name
    # went on to authenticate, and the lockout's attempt row (varchar 255) turned the failure into a 500. A
    # field error stops authentication before anything is written; the password is capped against hashing
    # megabytes.
    PASSWORD_MAX = 4096

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        username = self.fields["username"]
        username.validators.append(MaxLengthValidator(username.max_length or 150))
        self.fields["password"].validators.append(MaxLengthValidator(self.PASSWORD_MAX))

    def confirm_login_allowed(self, user):
        if not user.is_active or not (access.is_system(user) or access.roles_by_park(user)):
            raise ValidationError(self.error_messages["invalid_login"], code="invalid_login",
                                  params={"username": self.username_field.verbose_name})


class PortalSite(LandingPagesMixin, admin.AdminSite):
    """The portal's site: the landing pages and menu order of carbonpark/admin_site.py, park staff let in by
    their memberships, the park switcher."""

    login_form = PortalAuthenticationForm

    def has_permission(self, request):
        user = request.user
        return bool(user.is_active and (access.is_system(user) or access.roles_by_park(user)))

    def autocomplete_view(self, request):
        return PortalAutocompleteView.as_view(admin_site=self)(request)

    def get_urls(self):
        return [path("switch-park/", self.admin_view(self.switch_park), name="switch_park"),
                path("alarm-popups/dismiss/", self.admin_view(self.dismiss_alarm_popups), name="alarm_popups_dismiss"),
                *super().get_urls()]

    def each_context(self, request):
        context = super().each_context(request)
        if self.has_permission(request):
            context["portal_parks"] = list(access.parks(request.user, Action.VIEW).only("pk", "code", "name_zh",
                                                                                         "name_en"))
            picked = request.session.get(SESSION_PARK)
            context["portal_park"] = picked if any(p.pk == picked for p in context["portal_parks"]) else None
            from apps.quality import popups

            context["alarm_popups"] = popups.popups(request)
        return context

    def switch_park(self, request):
        """The park switcher (R-7.3.3): a park the user may view, or all of its parks ("")."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        value = request.POST.get("park", "")
        if value:
            try:
                park_id = int(value)
            except ValueError:
                raise PermissionDenied from None
            if not access.check(request.user, Action.VIEW, park_id):
                raise PermissionDenied
            request.session[SESSION_PARK] = park_id
        else:
            request.session.pop(SESSION_PARK, None)
        target = request.POST.get("next") or reverse("admin:index", current_app=self.name)
        if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                               require_https=request.is_secure()):
            target = reverse("admin:index", current_app=self.name)
        messages.info(request, _("Showing all your parks.") if not value else _("Showing one park."))
        return HttpResponseRedirect(target)

    def dismiss_alarm_popups(self, request):
        from apps.quality import popups

        return popups.dismiss_view(request, self.name)


def adopt(site) -> None:
    """Wrap the ModelAdmins Django and third-party apps registered (auth, django_celery_beat) in
    PortalAdmin. Ours must inherit it themselves (tests/test_portal_matrix.py fails otherwise)."""
    for model, model_admin in list(site._registry.items()):
        cls = type(model_admin)
        if issubclass(cls, PortalAdmin) or cls.__module__.startswith("apps."):
            continue
        site.unregister(model)
        site.register(model, type("Portal" + cls.__name__, (PortalAdmin, cls), {"__module__": __name__}))
