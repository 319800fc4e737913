"""``manage.py fill_gaps``: one filling run (R-9.3.2.1, R-9.3.1), as the beat task does. ``--now`` skips the resend
and its wait (every open gap filled at once, as far as interpolation and profiles reach); ``--gap`` only those."""

from django.core.management.base import BaseCommand

from apps.quality.filling import fill_gaps


class Command(BaseCommand):
    help = "Fill the open gaps (resend, then interpolation, then profiles) and repair minor anomalies."

    def add_arguments(self, parser):
        parser.add_argument("--now", action="store_true", help="no resend, no wait: fill what can be filled now")
        parser.add_argument("--gap", type=int, action="append", help="only this gap (repeatable)")

    def handle(self, *args, now=False, gap=None, **options):
        r = fill_gaps(force=now, gap_ids=gap)
        if r.busy:
            self.stdout.write("another run (or a gap detection) is in progress; nothing done")
            return
        self.stdout.write(f"{r.asked} resend(s) asked, {r.waiting} waiting, {r.linear} gap(s) interpolated, "
                          f"{r.profile} filled by a profile, {r.points} point(s) stored, {r.unfilled} left open, "
                          f"{r.repaired} anomal(ies) repaired, {r.seconds:.2f} s")
