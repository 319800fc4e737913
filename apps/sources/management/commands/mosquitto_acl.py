import os
import sys
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from apps.sources import acl
from apps.sources.selectors import gateways_with_members


class Command(BaseCommand):
    help = ("Print (or --write) Mosquitto's ACL file: deploy/mosquitto/acl plus, for each gateway, the topics of "
            "the sources registered behind it. Reload Mosquitto afterwards (systemctl reload mosquitto). "
            "Runs as the system: every park's gateways.")

    def add_arguments(self, parser):
        parser.add_argument("--write", metavar="PATH", help="write it to PATH atomically (e.g. /etc/mosquitto/acl)")
        parser.add_argument("--base", metavar="PATH", default=str(Path(settings.BASE_DIR) / "deploy/mosquitto/acl"),
                            help="the hand-written part (default: deploy/mosquitto/acl)")

    def handle(self, *args, write, base, **options):
        text, warnings = acl.render(Path(base).read_text(encoding="utf-8"), gateways_with_members())
        for warning in warnings:
            self.stderr.write(f"warning: {warning}")
        if not write:
            sys.stdout.write(text)
            return
        target = Path(write)
        mode, owner = 0o640, None
        if target.exists():
            st = target.stat()
            mode, owner = st.st_mode & 0o777, (st.st_uid, st.st_gid)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
            os.chmod(tmp, mode)
            if owner is not None and hasattr(os, "chown"):
                try:
                    os.chown(tmp, *owner)
                except PermissionError:
                    self.stderr.write(f"warning: could not keep the owner of {target}; check it")
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        users = text.split(acl.MARK, 1)[1].count("\nuser ")
        self.stdout.write(f"wrote {target}: {users} gateway user(s). Apply it: systemctl reload mosquitto "
                          "(SIGHUP; Mosquitto re-reads the ACL and re-checks existing subscriptions).")
