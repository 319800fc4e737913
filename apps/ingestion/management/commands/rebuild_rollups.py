from django.core.management.base import BaseCommand, CommandError

from apps.accounts.models import Park
from apps.ingestion import rollups


class Command(BaseCommand):
    help = ("Recompute the hourly, daily and monthly rollups from the stored readings, one month partition at a "
            "time (after a park's time zone changed, or to check them). The beat keeps them current otherwise.")

    def add_arguments(self, parser):
        parser.add_argument("--park", help="the park's code (default: every park)")

    def handle(self, *args, park=None, **options):
        park_id = None
        if park:
            found = Park.objects.filter(code=park).values_list("pk", flat=True).first()
            if found is None:
                raise CommandError(f"no park with code {park}")
            park_id = found
        result = rollups.rebuild(park_id)
        if options["verbosity"]:
            self.stdout.write(f"rollups rebuilt: {result.series} ranges, {result.hours} hours in "
                              f"{result.seconds:.1f} s")
