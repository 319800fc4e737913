import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carbonpark.settings")
django.setup(set_prefix=False)

from apps.core.handlers import Application  # noqa: E402 - after django.setup()
from apps.ingestion.fastpush import PATH, FastPush  # noqa: E402

# Django's WSGI application, with a shorter middleware stack for token-authenticated API requests (the
# devices' one-reading pushes): apps/core/handlers.py; their plain JSON pushes take a short path of their own
# (apps/ingestion/fastpush.py).
application = Application(short_paths={PATH: FastPush})
