"""Sessions that end when idle (issue #8 deliverable 4; settings.SESSION_IDLE_SECONDS)."""

import time

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.urls import reverse

LAST_SEEN = "cp_last_seen"
# The last-seen mark is written at most once a minute: not a session write on every request.
RESOLUTION_S = 60


class IdleSessionMiddleware:
    """A signed-in portal session with no request for SESSION_IDLE_SECONDS is logged out (audited as a
    log-out with reason "idle") and sent to the log-in page; the absolute limit is SESSION_COOKIE_AGE."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        idle = settings.SESSION_IDLE_SECONDS
        user = getattr(request, "user", None)
        if idle and user is not None and user.is_authenticated and hasattr(request, "session"):
            now = int(time.time())
            seen = request.session.get(LAST_SEEN)
            if seen is not None and now - seen > idle:
                request.logout_reason = "idle"
                logout(request)
                if not request.path_info.startswith("/api/"):
                    return redirect_to_login(request.get_full_path(), reverse("admin:login"))
            elif seen is None or now - seen >= RESOLUTION_S:
                request.session[LAST_SEEN] = now
        return self.get_response(request)
