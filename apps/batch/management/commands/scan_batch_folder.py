"""``manage.py scan_batch_folder``: one scan of the legacy shared folder (R-7.4.1.2), as the beat task does."""

from django.core.management.base import BaseCommand

from apps.batch.folder import scan_folder


class Command(BaseCommand):
    help = "Load the complete batch files of the shared folder (BATCH_FOLDER_ROOT) into their parks."

    def add_arguments(self, parser):
        parser.add_argument("--root", help="the shared folder (default: BATCH_FOLDER_ROOT)")
        parser.add_argument("--settle", type=int, default=None,
                            help="seconds a file must rest unchanged (default: BATCH_FOLDER_SETTLE_SECONDS)")

    def handle(self, *args, root=None, settle=None, **options):
        results = scan_folder(root, settle_seconds=settle)
        for r in results:
            rep = r.report
            if rep.ok:
                self.stdout.write(f"{r.path} -> {r.moved_to}: {rep.rows} rows, {rep.accepted} accepted, "
                                  f"{rep.duplicates} duplicates, {rep.rejected} rejected")
            else:
                self.stdout.write(f"{r.path} -> {r.moved_to}: {rep.file_error.code} {rep.file_error.message_en}")
        self.stdout.write(f"{len(results)} file(s)")
