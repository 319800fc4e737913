"""Check an export archive against its manifest (R-7.3.4):

1. every file the manifest lists is in the zip with the SHA-256 and size the manifest gives, and the zip holds
   no file the manifest does not list (an altered, missing or extra file fails);
2. the manifest itself is the one the platform wrote: the export is on the audit trail (its ``exportId``),
   which records the SHA-256 of ``manifest.json`` (a manifest edited afterwards, even with its file hashes
   rewritten to match altered data, fails).

    manage.py verify_export history-TP01-20261207-120000.zip
    manage.py verify_export --offline export.zip     # step 1 only (no database at hand: an integrator's copy)

Exit status 0 when everything matches, 1 otherwise, with what does not match."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from apps.core.exports import check_archive


class Command(BaseCommand):
    help = ("Verify an export archive (zip) against its manifest.json and the manifest against the audit trail; "
            "exit 1 if anything does not match.")

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="the export archive (.zip)")
        parser.add_argument("--offline", action="store_true",
                            help="check the files against the manifest only, not the manifest against the audit "
                                 "trail (for a copy verified away from the platform's database)")

    def handle(self, *args, file: Path, offline: bool = False, **options):
        if not file.is_file():
            raise CommandError(f"FAILED  {file}: no such file", returncode=1)
        found = check_archive(file)
        if not found.ok:
            raise CommandError(f"FAILED  {file}: {found.message}", returncode=1)
        if offline:
            self.stdout.write(f"{found.message}; manifest SHA-256 {found.manifest_sha256} (not checked against "
                              "the audit trail: --offline)")
            return
        self.stdout.write(f"{found.message}; {self._trail(file, found)}")

    def _trail(self, file: Path, found) -> str:
        from apps.core.models import AuditEntry

        export_id = found.manifest.get("exportId") if isinstance(found.manifest, dict) else None
        if not isinstance(export_id, str) or not export_id or len(export_id) > 64:
            raise CommandError(f"FAILED  {file}: the manifest names no exportId: it is not one the platform "
                               "wrote (use --offline to check the files only)", returncode=1)
        try:
            entry = AuditEntry.objects.filter(object_type="export", object_id=export_id).order_by("id").first()
        except DatabaseError as exc:
            raise CommandError(f"FAILED  {file}: the audit trail cannot be read ({exc.__class__.__name__}); "
                               "use --offline to check the files only", returncode=1) from None
        if entry is None:
            raise CommandError(f"FAILED  {file}: export {export_id} is not on this platform's audit trail (an "
                               "altered manifest, or another installation's export; --offline checks the files "
                               "only)", returncode=1)
        recorded = (entry.after or {}).get("manifestSha256")
        if recorded != found.manifest_sha256:
            raise CommandError(f"FAILED  {file}: manifest.json was altered: its SHA-256 {found.manifest_sha256} "
                               f"is not the {recorded} recorded on the audit trail (entry #{entry.pk}, "
                               f"{entry.at:%Y-%m-%d %H:%M:%S} by {entry.actor_label})", returncode=1)
        return (f"the manifest is the one on the audit trail (entry #{entry.pk}, {entry.at:%Y-%m-%d %H:%M:%S} "
                f"by {entry.actor_label})")
