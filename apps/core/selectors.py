"""Kernel reads: the configuration version and the audit chain's verification."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection

from apps.core.chain import GENESIS, HASHED_FIELDS, entry_digest
from apps.core.services import INGEST_CONFIG


def config_version(name: str = INGEST_CONFIG) -> int:
    with connection.cursor() as cur:
        cur.execute("SELECT version FROM core_configversion WHERE name = %s", [name])
        row = cur.fetchone()
    return row[0] if row else 0


@dataclass(frozen=True)
class ChainReport:
    """One chain walked: how many records, its head, and the first broken link if any."""

    park_code: str
    records: int
    head_seq: int
    head_hash: str
    broken_id: int | None = None
    broken_at: object = None
    broken_seq: int | None = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return not self.problem


def audit_chains() -> list[str]:
    """Every chain present in the trail ("" is the platform's)."""
    from apps.core.models import AuditEntry

    return sorted(AuditEntry.objects.order_by().values_list("park_code", flat=True).distinct())


def verify_chain(park_code: str, *, chunk: int = 5000) -> ChainReport:
    """Walk one chain in order and stop at its first broken link (R-9.3.2.3): a record whose content no
    longer gives its hash (edited), whose prev_hash is not the hash of the record before it (one deleted or
    inserted before it), whose position skips or repeats (deleted, inserted), or whose row id runs backwards
    (inserted later into the middle). Streams the chain: memory stays flat on millions of records."""
    from apps.core.models import AuditEntry

    rows = (AuditEntry.objects.filter(park_code=park_code).order_by("seq", "id")
            .values("id", "hash", *HASHED_FIELDS).iterator(chunk_size=chunk))
    expected_seq, prev_hash, prev_id, count = 1, GENESIS, 0, 0
    for row in rows:
        count += 1
        problem = ""
        if row["seq"] != expected_seq:
            problem = (f"position {row['seq']} where {expected_seq} was expected: "
                       + ("a record is missing before it" if row["seq"] > expected_seq else "a record is repeated"))
        elif row["prev_hash"] != prev_hash:
            problem = (f"prev_hash {row['prev_hash'][:16]}… is not the hash of the record before it "
                       f"({prev_hash[:16]}…): the record before it was replaced, or this one inserted")
        elif entry_digest(row) != row["hash"]:
            problem = "its content does not give its hash: the record was edited"
        elif row["id"] < prev_id:
            problem = f"row id {row['id']} is lower than the previous record's ({prev_id}): inserted later"
        if problem:
            return ChainReport(park_code, count, expected_seq - 1, prev_hash, broken_id=row["id"],
                               broken_at=row["at"], broken_seq=row["seq"], problem=problem)
        expected_seq, prev_hash, prev_id = row["seq"] + 1, row["hash"], row["id"]
    return ChainReport(park_code, count, expected_seq - 1, prev_hash)


def verify_heads(known: dict, *, only: list[str] | None = None) -> list[tuple[str, str]]:
    """Heads kept outside the database by an earlier verification ({park_code: {seq, hash}}): each must
    still be in its chain at the same position with the same hash (a truncated or rewritten chain end)."""
    from apps.core.models import AuditEntry

    problems = []
    for code, head in sorted(known.items()):
        if only is not None and code not in only:
            continue
        stored = (AuditEntry.objects.filter(park_code=code, seq=head["seq"]).values_list("hash", flat=True)
                  .first())
        if stored is None:
            problems.append((code, f"record #{head['seq']} seen by an earlier verification is gone"))
        elif stored != head["hash"]:
            problems.append((code, f"record #{head['seq']} no longer has the hash an earlier verification saw"))
    return problems
