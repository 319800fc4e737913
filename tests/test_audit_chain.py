"""The audit trail is a hash chain per park (issue #8, R-9.3.2.3): verify_audit finds the first record
edited, deleted or inserted in SQL by someone who can turn the append-only trigger off."""

import io
import json
import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections, transaction
from django.db.utils import DatabaseError

from apps.core.chain import GENESIS
from apps.core.models import AuditEntry
from apps.core.selectors import verify_chain
from apps.core.services import record_change


def record(n, park="TP01", **extra):
    return record_change(actor="test", action="test.step", object_type="test.thing", object_id=str(n),
                         park_code=park, **extra)


def verify(*args):
    out = io.StringIO()
    try:
        call_command("verify_audit", *args, stdout=out)
    except CommandError:
        return False, out.getvalue()
    return True, out.getvalue()


def tamper(sql, params=()):
    """What someone with the database's rights does: switch the trigger's guard off and change the rows."""
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL carbonpark.audit_maintenance = 'on'")
        cur.execute(sql, params)


@pytest.mark.django_db
def test_each_park_has_its_own_chain():
    odd = {"v": 2.0, "big": 1e16, "t": "碳", "l": (1, 0.1), 7: True, "e": 1e-7}  # as jsonb gives them back or not
    a1, p1, a2 = record(1), record(2, park=""), record(3, after=odd)
    assert (a1.seq, a1.prev_hash) == (1, GENESIS)
    assert (p1.seq, p1.prev_hash) == (1, GENESIS)
    assert (a2.seq, a2.prev_hash) == (2, a1.hash)
    assert len({a1.hash, p1.hash, a2.hash}) == 3
    ok, out = verify()
    assert ok, out
    assert "TP01: 2 records" in out and "(platform): 1 records" in out
    assert verify_chain("TP01").head_hash == a2.hash


@pytest.mark.django_db
def test_edit_delete_insert_in_sql_are_each_found():
    entries = [record(n) for n in range(5)]
    record(9, park="TP02")

    tamper("UPDATE core_auditentry SET after = '{\"role\": \"admin\"}' WHERE id = %s", [entries[1].pk])
    ok, out = verify()
    assert not ok
    assert f"BROKEN  TP01: record id {entries[1].pk} (#2," in out and "edited" in out
    assert "OK      TP02" in out  # the other park's chain is untouched
    ok, out = verify("--park", "TP02")
    assert ok, out

    # Put it back (the attacker covering the tracks has to restore the exact content), then delete one.
    tamper("UPDATE core_auditentry SET after = NULL WHERE id = %s", [entries[1].pk])
    assert verify()[0]
    tamper("DELETE FROM core_auditentry WHERE id = %s", [entries[2].pk])
    ok, out = verify("--park", "TP01")
    assert not ok and f"record id {entries[3].pk} (#4," in out and "missing" in out

    # Renumber the rest to close the gap: the link to the deleted record's hash still breaks.
    tamper("UPDATE core_auditentry SET seq = seq + 1000 WHERE park_code = 'TP01' AND seq > 3")
    tamper("UPDATE core_auditentry SET seq = seq - 1001 WHERE park_code = 'TP01' AND seq > 1000")
    ok, out = verify("--park", "TP01")
    assert not ok and f"record id {entries[3].pk} (#3," in out and "prev_hash" in out


@pytest.mark.django_db
def test_inserted_record_is_found():
    entries = [record(n) for n in range(3)]
    # A forged record at the end, linked to the head, with a hash that is not of its content.
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("INSERT INTO core_auditentry (at, actor_label, action, object_type, object_id, object_repr,"
                    " park_code, reason, seq, prev_hash, hash) VALUES (now(), 'admin', 'membership.set',"
                    " 'accounts.membership', '7', '', 'TP01', '', 4, %s, %s) RETURNING id",
                    [entries[-1].hash, "f" * 64])
        forged = cur.fetchone()[0]
    ok, out = verify()
    assert not ok and f"record id {forged} (#4," in out and "edited" in out

    # A well-formed copy slipped into the middle: later records move up one place.
    tamper("DELETE FROM core_auditentry WHERE id = %s", [forged])
    tamper("UPDATE core_auditentry SET seq = seq + 1000 WHERE park_code = 'TP01' AND seq >= 2")
    tamper("UPDATE core_auditentry SET seq = seq - 999 WHERE park_code = 'TP01' AND seq > 1000")
    tamper("INSERT INTO core_auditentry (at, actor_label, action, object_type, object_id, object_repr, park_code,"
           " reason, seq, prev_hash, hash, before, after) SELECT at, actor_label, action, object_type, object_id,"
           " object_repr, park_code, reason, 2, prev_hash, hash, before, after FROM core_auditentry WHERE id = %s",
           [entries[1].pk])
    ok, out = verify()
    assert not ok and "TP01" in out and "BROKEN" in out


@pytest.mark.django_db
def test_heads_kept_outside_find_a_cut_end(tmp_path):
    entries = [record(n) for n in range(3)]
    heads = tmp_path / "heads.json"
    assert verify("--heads", str(heads))[0]
    assert json.loads(heads.read_text())["TP01"] == {"seq": 3, "hash": entries[-1].hash}
    record(4)
    assert verify("--heads", str(heads))[0]  # the chain grew past the kept head: fine
    tamper("DELETE FROM core_auditentry WHERE park_code = 'TP01' AND seq >= 3")
    assert verify()[0]  # a chain cut at its end still links up ...
    ok, out = verify("--heads", str(heads))
    assert not ok and "#4 seen by an earlier verification is gone" in out  # ... the kept head does not


@pytest.mark.django_db
def test_trigger_refuses_update_and_delete_but_lets_users_go(django_user_model):
    user = django_user_model.objects.create_user("leaver", password="x" * 12)
    entry = record_change(actor=user, action="test.step", object_type="t", object_id="1", park_code="TP01")
    for sql in ("UPDATE core_auditentry SET reason = 'x' WHERE id = %s", "DELETE FROM core_auditentry WHERE id = %s"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cur:
            cur.execute(sql, [entry.pk])
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).delete()
    user.delete()  # the foreign key's SET NULL is the one update allowed; the name stays in actor_label
    entry = AuditEntry.objects.get(pk=entry.pk)
    assert entry.actor_id is None and entry.actor_label == "leaver"
    assert verify()[0]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_appends_to_one_chain_neither_fork_nor_skip():
    errors = []

    def writer(n):
        try:
            for i in range(15):
                with transaction.atomic():
                    record(n * 100 + i)
                    record(n * 100 + i, park=f"P{n}")  # two chains in one transaction
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    report = verify_chain("TP01")
    assert report.ok and report.records == 60 and report.head_seq == 60
    assert all(verify_chain(f"P{n}").records == 15 for n in range(4))
