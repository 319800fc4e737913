"""``manage.py derive_consumption``: one run of the register derivation (issue #12 item 2), as the beat task does;
``--full`` redoes every register whole."""

from django.core.management.base import BaseCommand

from apps.quality.registers.derive import derive_consumption


class Command(BaseCommand):
    help = "Derive consumption from the meter registers queued since the last run (--full: every register whole)."

    def add_arguments(self, parser):
        parser.add_argument("--full", action="store_true", help="redo every register, not only what was queued")

    def handle(self, *args, full=False, **options):
        r = derive_consumption(full=full)
        if r.busy:
            self.stdout.write("another run is in progress; nothing done")
            return
        self.stdout.write(f"{r.series} registers, {r.dropped} intervals dropped, {r.derived} derived, "
                          f"{r.hours} hours written, {r.seconds:.2f} s")
