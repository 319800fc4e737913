from django.core.management.base import BaseCommand, CommandError

from apps.accounts.models import Park
from apps.ingestion import rollup_rebuild


class Command(BaseCommand):
    help = ("Recompute the hourly, daily and monthly rollups from the stored readings, one month partition per "
            "transaction, newest first (after a park's time zone changed, or to check them; after an upgrade, "
            "--pending finishes what the migration left to the beat). The beat keeps them current otherwise.")

    def add_arguments(self, parser):
        parser.add_argument("--park", help="the park's code (default: every park)")
        parser.add_argument("--pending", action="store_true",
                            help="only build the partitions already pending (an upgrade's), queue nothing")

    def handle(self, *args, park=None, pending=False, **options):
        park_id = None
        if park:
            found = Park.objects.filter(code=park).values_list("pk", flat=True).first()
            if found is None:
                raise CommandError(f"no park with code {park}")
            park_id = found
        if not pending:
            rollup_rebuild.queue(park_id)
        for step in rollup_rebuild.run():
            if options["verbosity"]:
                self.stdout.write(f"{step.month or 'DEFAULT'}: {step.readings} readings, {step.hours} hours in "
                                  f"{step.seconds:.1f} s")
        if options["verbosity"]:
            self.stdout.write("rollups rebuilt")
