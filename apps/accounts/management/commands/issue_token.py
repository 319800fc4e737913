from django.core.management.base import BaseCommand, CommandError

from apps.accounts import access
from apps.accounts.models import ApiToken
from apps.accounts.services import issue_token

SYSTEM = access.SystemPrincipal("manage.py issue_token")


class Command(BaseCommand):
    help = ("Issue an API token scoped to a park and print its key (shown once). interfaces.md §3. Runs as the "
            "system (any park); the token's role decides what it may call (docs/roles.md).")

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--park", required=True, help="park code, e.g. JSTZ01")
        parser.add_argument("--role", default=ApiToken.Role.INTEGRATOR, choices=ApiToken.Role.values)

    def handle(self, *args, name, park, role, **options):
        park_obj = access.parks(SYSTEM).filter(code=park).first()
        if park_obj is None:
            raise CommandError(f"No park with code {park!r}.")
        if access.restrict(ApiToken.objects.filter(park=park_obj, name=name), SYSTEM, access.Action.MANAGE).exists():
            raise CommandError(f"Park {park} already has a token named {name!r}; pick another name.")
        _token, key = issue_token(actor=SYSTEM.audit_label, park=park_obj, name=name, role=role)
        self.stdout.write(key)
