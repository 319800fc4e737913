"""Production serving: gunicorn (WSGI), sync workers; about 3x Django-under-ASGI on two cores."""

import multiprocessing
import os

# CARBONPARK_PORT, not PORT: honcho gives every Procfile process a PORT of its own.
HOST = os.environ.get("CARBONPARK_HOST", "127.0.0.1")
PORT = os.environ.get("CARBONPARK_PORT") or os.environ.get("PORT", "8000")
bind = f"{HOST}:{PORT}"
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
worker_class = "sync"
timeout = 120
graceful_timeout = 20
keepalive = 5
max_requests = 20000
max_requests_jitter = 2000
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
# The control socket (gunicornc) of this instance, under its own var/: the default ($XDG_RUNTIME_DIR or
# ~/.gunicorn/gunicorn.ctl) is one path shared by every gunicorn of the user, so a second instance took it over.
control_socket = os.path.join(os.environ.get("CARBONPARK_VAR") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "var"), "run", "gunicorn.ctl")
