"""Check an export archive against its manifest (R-7.3.4): every file listed with the SHA-256 and size the
manifest gives, and no file that is not listed.

    manage.py verify_export readings-JSTZ01-20261207-120000.zip

Exit status 0 when the archive matches its manifest, 1 otherwise (with what does not match)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.core.exports import verify


class Command(BaseCommand):
    help = "Verify an export archive (zip) against its manifest.json; exit 1 if anything does not match."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="the export archive (.zip)")

    def handle(self, *args, file: Path, **options):
        if not file.is_file():
            raise CommandError(f"FAILED  {file}: no such file", returncode=1)
        ok, message = verify(file)
        if ok:
            self.stdout.write(f"{message}")
            return
        raise CommandError(f"FAILED  {file}: {message}", returncode=1)
