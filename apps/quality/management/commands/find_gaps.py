"""``manage.py find_gaps``: one gap detection run (R-9.1.2), as the beat task does; ``--full`` scans every series."""

from django.core.management.base import BaseCommand, CommandError

from apps.quality.gaps import DEFAULT_TOLERANCE, find_gaps


class Command(BaseCommand):
    help = "Find the gaps of the readings stored since the last run (--full: of every stored reading)."

    def add_arguments(self, parser):
        parser.add_argument("--full", action="store_true", help="scan every series, not only what was stored since")
        parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                            help="a gap is longer than interval × (1 + tolerance) (default %(default)s)")

    def handle(self, *args, full=False, tolerance=DEFAULT_TOLERANCE, **options):
        try:
            r = find_gaps(full=full, tolerance=tolerance)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if r.busy:
            self.stdout.write("another run is in progress; nothing done")
            return
        self.stdout.write(f"{'full scan' if r.full else 'incremental'}: {r.series} series, {r.opened} gaps opened, "
                          f"{r.changed} changed, {r.closed} closed by readings, {r.seconds:.2f} s")
