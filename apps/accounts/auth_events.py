"""Log-in events as audit records, and django-axes' glue. The receivers only adapt: each calls one
service in apps.accounts.services (house rule 3)."""

from __future__ import annotations

from axes.backends import AxesStandaloneBackend
from axes.exceptions import AxesBackendPermissionDenied
from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver
from django.template.response import TemplateResponse


def client_ip(request) -> str:
    """The client's address: behind the TLS front (production) the X-Real-IP that nginx sets from the
    connection (deploy/nginx), which a client cannot forge; otherwise the connection's own address."""
    if settings.PRODUCTION and request.META.get("HTTP_X_REAL_IP"):
        return request.META["HTTP_X_REAL_IP"]
    return request.META.get("REMOTE_ADDR", "")


def lockout_response(request, original_response=None, credentials=None):
    """django-axes' answer to a locked-out log-in: the portal's page, in the portal's language, 429; on an
    API path (a password-checking DRF authentication, should one be enabled) a JSON body with Retry-After."""
    from django.contrib import admin

    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    if request.path_info.startswith("/api/"):
        from django.http import JsonResponse
        from django.utils.translation import gettext

        response = JsonResponse({"detail": gettext("Too many failed log-ins for this user name from this address. "
                                                    "Try again in %(minutes)s minutes.") % {"minutes": minutes}},
                                status=429)
        response["Retry-After"] = str(minutes * 60)
        return response
    context = {**admin.site.each_context(request), "cooloff_minutes": minutes,
               "failure_limit": settings.AXES_FAILURE_LIMIT}
    return TemplateResponse(request, "accounts/lockout.html", context, status=429).render()


@receiver(user_logged_in, dispatch_uid="carbonpark.audit.login")
def _logged_in(sender, request, user, **kwargs):
    from apps.accounts.services import record_login

    record_login(user=user, request=request)


@receiver(user_login_failed, dispatch_uid="carbonpark.audit.login_failed")
def _login_failed(sender, credentials, request=None, **kwargs):
    from apps.accounts.services import record_login_failure

    username = credentials.get("username") or credentials.get(settings.AXES_USERNAME_FORM_FIELD) or ""
    record_login_failure(username=username, request=request,
                         locked_out=bool(getattr(request, "cp_login_refused", False)))


@receiver(user_logged_out, dispatch_uid="carbonpark.audit.logout")
def _logged_out(sender, request, user, **kwargs):
    from apps.accounts.services import record_logout

    record_logout(user=user, request=request, reason=getattr(request, "logout_reason", ""))


@receiver(user_locked_out, dispatch_uid="carbonpark.audit.lockout")
def _locked_out(sender, request, username, ip_address, **kwargs):
    from apps.accounts.services import record_lockout

    if getattr(request, "cp_login_refused", False):
        return  # axes repeats the signal for every attempt refused while locked: those are login_refused
    record_lockout(username=username, request=request)



class LockoutBackend(AxesStandaloneBackend):
    """django-axes' guard for log-ins that come with a request (the portal's form, DRF's basic auth). A call
    without one (the test client's ``login``, a shell) has no address to lock out: it is passed on."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        try:
            return super().authenticate(request, username=username, password=password, **kwargs)
        except AxesBackendPermissionDenied:
            request.cp_login_refused = True  # refused for the lockout, before any password check
            raise
