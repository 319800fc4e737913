"""Walk the audit trail's hash chains and report the first broken link of each (R-9.3.2.3).

    manage.py verify_audit                 every chain (one per park, "" = the platform's)
    manage.py verify_audit --park JSTZ01   one park's chain
    manage.py verify_audit --heads heads.json
        also check that every head written by an earlier run (kept outside the database) is still in its
        chain with the same hash, then write today's heads there: this catches records removed from or
        rewritten at the end of a chain, which a chain alone cannot show.

Exit status 0 when every chain holds, 1 otherwise."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.core.selectors import audit_chains, verify_chain, verify_heads


class Command(BaseCommand):
    help = "Verify the audit trail's hash chains; report the first broken link; exit 1 if any."

    def add_arguments(self, parser):
        parser.add_argument("--park", help="park code; '' for the platform's chain (default: every chain)")
        parser.add_argument("--heads", type=Path, help="JSON file of chain heads kept outside the database")

    def handle(self, *args, park=None, heads=None, **options):
        chains = [park] if park is not None else audit_chains()
        reports = [verify_chain(code) for code in chains]
        broken = 0
        for report in reports:
            name = report.park_code or "(platform)"
            if report.ok:
                self.stdout.write(f"OK      {name}: {report.records} records, head #{report.head_seq} "
                                  f"{report.head_hash}")
            else:
                broken += 1
                self.stdout.write(f"BROKEN  {name}: record id {report.broken_id} (#{report.broken_seq}, "
                                  f"{report.broken_at:%Y-%m-%d %H:%M:%S.%f %Z}): {report.problem}; "
                                  f"the chain holds up to #{report.head_seq}")
        if heads is not None:
            known = json.loads(heads.read_text()) if heads.exists() else {}
            for code, problem in verify_heads(known, only=chains if park is not None else None):
                broken += 1
                self.stdout.write(f"BROKEN  {code or '(platform)'}: {problem}")
            if not broken:
                known.update({r.park_code: {"seq": r.head_seq, "hash": r.head_hash} for r in reports})
                heads.write_text(json.dumps(known, indent=1, sort_keys=True) + "\n")
        if broken:
            raise CommandError(f"{broken} broken audit chain(s)")
