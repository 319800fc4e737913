"""``manage.py upload FILE… [--park CODE] [--url URL --token KEY] [--parts N] [--check-only]``: check batch files
locally with the server's parsers, send them resumably (tus, optionally in parallel parts) and wait for their load
(issue #11 item 3, R-7.2.2). The work is apps.uploads.client; docs/uploads.md describes the command."""

import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.uploads.client import Options, run


class Command(BaseCommand):
    help = ("Check batch files as the platform will (name, encoding, header, every row), then upload them "
            "resumably and wait for their load. Exit status: 0 all loaded, 1 a file refused or failed to load, "
            "2 interrupted (run again to resume).")
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", help="batch files named after the §7 rule")
        parser.add_argument("--park", help="the park's code (when the token may push to several parks)")
        parser.add_argument("--url", default=os.environ.get("CARBONPARK_URL") or settings.PUBLIC_BASE_URL
                            or "http://127.0.0.1:8000", help="the platform's base URL (env CARBONPARK_URL)")
        parser.add_argument("--token", default=os.environ.get("CARBONPARK_TOKEN", ""),
                            help="an API token of the park (env CARBONPARK_TOKEN)")
        parser.add_argument("--parts", type=int, default=1, help="send each file as N parallel parts (1-16)")
        parser.add_argument("--check-only", action="store_true", help="check the files, send nothing")
        parser.add_argument("--allow-row-errors", action="store_true",
                            help="send a file whose only problems are rows (the platform rejects those rows)")
        parser.add_argument("--chunk-size", type=int, default=5 * 1024 * 1024, help="bytes per PATCH")
        parser.add_argument("--retries", type=int, default=5, help="retries of a chunk after a network error")
        parser.add_argument("--retry-delay", type=float, default=2.0, help="seconds between retries")
        parser.add_argument("--no-wait", action="store_true", help="do not wait for the load")
        parser.add_argument("--wait-timeout", type=float, default=3600.0, help="seconds to wait for the load")
        parser.add_argument("--state", default=os.environ.get("CARBONPARK_UPLOAD_STATE", ""),
                            help="the resume state file (default ~/.cache/carbonpark/uploads.json)")
        parser.add_argument("--lang", choices=["zh", "en"], default="zh", help="language of the messages")

    def handle(self, *args, **o):
        if not 1 <= o["parts"] <= 16:
            raise CommandError("--parts must be between 1 and 16")
        if o["chunk_size"] < 1:
            raise CommandError("--chunk-size must be positive")
        if not o["check_only"] and not o["token"]:
            raise CommandError("an API token is needed to send: --token KEY or CARBONPARK_TOKEN")
        opts = Options(base_url=o["url"], token=o["token"], park=o["park"] or None, parts=o["parts"],
                       chunk_size=o["chunk_size"], retries=o["retries"], retry_delay=o["retry_delay"],
                       wait=not o["no_wait"], wait_timeout=o["wait_timeout"],
                       lang="en" if o["lang"] == "en" else "zh-hans", out=self.stdout._out, err=self.stderr._out)
        if o["state"]:
            opts.state_path = Path(o["state"])
        status = run([Path(f) for f in o["files"]], opts, check_only=o["check_only"],
                     allow_row_errors=o["allow_row_errors"])
        if status:
            raise SystemExit(status)
