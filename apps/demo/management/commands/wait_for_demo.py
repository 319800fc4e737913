import time

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from apps.accounts.models import Park
from apps.demo.management.commands.demo_setup import DEMO_PARK
from apps.sources.models import DataSource


class Command(BaseCommand):
    help = "Wait until migrations have run and the demo park exists (the web process creates it)."

    def add_arguments(self, parser):
        parser.add_argument("--timeout", type=float, default=300)

    def handle(self, *args, timeout, **options):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if Park.objects.filter(code=DEMO_PARK).exists() and DataSource.objects.filter(
                        source_id__startswith=DEMO_PARK).count() >= 9:
                    return
            except DatabaseError:
                pass
            time.sleep(1)
        raise CommandError("the demo park did not appear in time")
