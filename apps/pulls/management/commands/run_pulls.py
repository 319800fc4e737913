"""manage.py run_pulls [--connector ID] [--full --from T --to T]: pull now (R-7.1.1.2), what beat does every
minute for the connectors that are due."""

from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apps.pulls.models import Connector
from apps.pulls.services import due_connectors, run_connector


def _when(text: str | None):
    if not text:
        return None
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise CommandError(f"not a time: {text!r} (YYYY-MM-DD[ HH:MM:SS], the platform's zone, or ISO 8601)") from None
    return timezone.make_aware(dt) if timezone.is_naive(dt) else dt


class Command(BaseCommand):
    help = "Run pull connectors now: the due ones, or one (--connector), incrementally or over a window (--full)."

    def add_arguments(self, parser):
        parser.add_argument("--connector", type=int, help="the connector's id (default: every due connector)")
        parser.add_argument("--full", action="store_true", help="a full pull over --from/--to; the cursor stays")
        parser.add_argument("--from", dest="start", help="window start (with --full)")
        parser.add_argument("--to", dest="end", help="window end (with --full)")

    def handle(self, *args, **opts):
        start, end = _when(opts["start"]), _when(opts["end"])
        if (start or end) and not opts["full"]:
            raise CommandError("--from and --to go with --full")
        if opts["connector"] is not None:
            if not Connector.objects.filter(pk=opts["connector"]).exists():
                raise CommandError(f"no connector {opts['connector']}")
            ids = [opts["connector"]]
        else:
            ids = due_connectors()
        mode = "full" if opts["full"] else "incremental"
        failed = 0
        for pk in ids:
            run = run_connector(pk, mode=mode, window=(start, end) if opts["full"] else None)
            if run is None:
                self.stdout.write(f"connector {pk}: already running, skipped")
                continue
            failed += run.state == run.State.FAILED
            self.stdout.write(f"connector {pk}: {run.state} pulled={run.pulled} accepted={run.accepted} "
                              f"duplicates={run.duplicates} rejected={run.rejected}"
                              + (f" {run.error_code} {run.error_message('en')}" if run.error_code else ""))
        if failed:
            raise CommandError(f"{failed} run(s) failed")
