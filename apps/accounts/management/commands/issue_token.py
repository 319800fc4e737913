from django.core.management.base import BaseCommand, CommandError

from apps.accounts.models import ApiToken, Park
from apps.accounts.services import issue_token


class Command(BaseCommand):
    help = "Issue an API token scoped to a park and print its key (shown once). interfaces.md §3"

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--park", required=True, help="park code, e.g. JSTZ01")
        parser.add_argument("--role", default=ApiToken.Role.INTEGRATOR, choices=ApiToken.Role.values)

    def handle(self, *args, name, park, role, **options):
        try:
            park_obj = Park.objects.get(code=park)
        except Park.DoesNotExist as exc:
            raise CommandError(f"No park with code {park!r}.") from exc
        if ApiToken.objects.filter(park=park_obj, name=name).exists():
            raise CommandError(f"Park {park} already has a token named {name!r}; pick another name.")
        _token, key = issue_token(actor="manage.py issue_token", park=park_obj, name=name, role=role)
        self.stdout.write(key)
