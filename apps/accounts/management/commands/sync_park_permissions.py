"""Repair django-guardian's per-park object permissions from the memberships (R-7.3.3)."""

from django.core.management.base import BaseCommand, CommandError

from apps.accounts import access
from apps.accounts.services import sync_park_permissions

SYSTEM = access.SystemPrincipal("manage.py sync_park_permissions")


class Command(BaseCommand):
    help = ("Make guardian's per-park object permissions (accounts.park_<action>) match the memberships: add the "
            "missing, remove the ones no membership explains. Idempotent; runs as the system (every park).")

    def add_arguments(self, parser):
        parser.add_argument("--park", help="only this park (code)")

    def handle(self, *args, park=None, **options):
        target = None
        if park:
            target = access.parks(SYSTEM).filter(code=park).first()
            if target is None:
                raise CommandError(f"No park with code {park!r}.")
        added, removed = sync_park_permissions(park=target)
        self.stdout.write(f"park permissions: {added} added, {removed} removed"
                          + ("" if added or removed else " (already in step)"))
