import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carbonpark.settings")
django.setup(set_prefix=False)

from apps.core.handlers import Application  # noqa: E402 - after django.setup()

# Django's WSGI application, with a shorter middleware stack for token-authenticated API requests (the
# devices' one-reading pushes): apps/core/handlers.py.
application = Application()
