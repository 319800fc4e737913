"""``manage.py quality_indicators [--month YYYY-MM] [--full] [--park CODE]``: recompute the monthly quality
indicators (R-9.1), as the beat task does (this month and the last); ``--month`` one month, ``--full`` every month
with data."""

from django.core.management.base import BaseCommand, CommandError

from apps.accounts.models import Park
from apps.quality.indicators import compute
from apps.quality.indicators.selectors import parse_month


class Command(BaseCommand):
    help = "Recompute the monthly quality indicators (default: this month and the last)."

    def add_arguments(self, parser):
        parser.add_argument("--month", help="one month, YYYY-MM (the parks' local calendar month)")
        parser.add_argument("--full", action="store_true", help="every month that has data")
        parser.add_argument("--park", help="only this park (code)")

    def handle(self, *args, month=None, full=False, park=None, **options):
        months = None
        if month is not None:
            parsed = parse_month(month)
            if parsed is None:
                raise CommandError("--month: a month as YYYY-MM, e.g. 2026-11")
            months = [parsed]
        if month is not None and full:
            raise CommandError("--month and --full exclude each other")
        parks = None
        if park is not None:
            parks = list(Park.objects.filter(code=park).values_list("pk", flat=True))
            if not parks:
                raise CommandError(f"unknown park {park!r}")
        for r in compute.refresh(months=months, full=full, parks=parks):
            self.stdout.write(f"{r.month:%Y-%m}: {r.rows} rows ({r.removed} replaced) in {r.seconds:.2f} s")
