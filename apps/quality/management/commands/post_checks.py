"""``manage.py post_checks``: one run of the checks after storage (R-9.2.2), as the beat task does; ``--full``
checks every stored reading."""

from django.core.management.base import BaseCommand

from apps.quality.postchecks import run_post_checks


class Command(BaseCommand):
    help = "Run the checks after storage over the readings stored since the last run (--full: every reading)."

    def add_arguments(self, parser):
        parser.add_argument("--full", action="store_true", help="check every series, not only what was stored since")

    def handle(self, *args, full=False, **options):
        r = run_post_checks(full=full)
        if r.busy:
            self.stdout.write("another run is in progress; nothing done")
            return
        hits = ", ".join(f"{kind} {n}" for kind, n in r.hits.items())
        self.stdout.write(f"{'full scan' if r.full else 'incremental'}: {r.series} series, new hits: {hits}, "
                          f"{r.seconds:.2f} s")
