"""The audit trail becomes a hash chain per park (issue #8, R-9.3.2.3).

1. ``seq``, ``prev_hash``, ``hash`` are added and the rows written before them are chained, per park in
   the order they were written (id), with the same function the service uses (apps.core.chain).
2. (park_code, seq) is unique: a chain cannot fork.
3. A trigger refuses UPDATE and DELETE on the table unless the session says
   ``SET carbonpark.audit_maintenance = 'on'`` (defence in depth: the application never updates it; the
   chain is what proves a change made by someone who can turn the trigger off). The one UPDATE allowed is
   PostgreSQL's SET NULL of ``actor_id`` when a user is deleted: ``actor_id`` is not hashed.
"""

import django.utils.timezone
from django.db import migrations, models

CHAIN_FIELDS = ("seq", "prev_hash", "at", "actor_label", "action", "object_type", "object_id", "object_repr",
                "park_code", "before", "after", "reason")


def chain_existing(apps, schema_editor):
    from apps.core.chain import GENESIS, entry_digest

    AuditEntry = apps.get_model("core", "AuditEntry")
    heads = {}
    batch = []
    for entry in AuditEntry.objects.order_by("id").iterator(chunk_size=2000):
        seq, prev = heads.get(entry.park_code, (0, GENESIS))
        entry.seq, entry.prev_hash = seq + 1, prev
        entry.hash = entry_digest({name: getattr(entry, name) for name in CHAIN_FIELDS})
        heads[entry.park_code] = (entry.seq, entry.hash)
        batch.append(entry)
        if len(batch) >= 2000:
            AuditEntry.objects.bulk_update(batch, ["seq", "prev_hash", "hash"])
            batch = []
    if batch:
        AuditEntry.objects.bulk_update(batch, ["seq", "prev_hash", "hash"])
    # the deferred foreign-key checks of those updates run now, so the ALTER TABLEs below may follow
    schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")


APPEND_ONLY = r"""
CREATE OR REPLACE FUNCTION core_auditentry_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('carbonpark.audit_maintenance', true), '') = 'on' THEN
        IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
        RETURN NEW;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.actor_id IS NULL
       AND (to_jsonb(NEW) - 'actor_id') = (to_jsonb(OLD) - 'actor_id') THEN
        RETURN NEW;  -- a deleted user's ON DELETE SET NULL; actor_id is not part of the hash
    END IF;
    RAISE EXCEPTION 'the audit trail is append-only: % of record % refused', TG_OP, OLD.id
        USING HINT = 'maintenance only: SET LOCAL carbonpark.audit_maintenance = ''on''';
END
$$;
CREATE TRIGGER core_auditentry_append_only BEFORE UPDATE OR DELETE ON core_auditentry
    FOR EACH ROW EXECUTE FUNCTION core_auditentry_append_only();
"""

DROP_APPEND_ONLY = """
DROP TRIGGER IF EXISTS core_auditentry_append_only ON core_auditentry;
DROP FUNCTION IF EXISTS core_auditentry_append_only();
"""


class Migration(migrations.Migration):

    dependencies = [
        ("core", "0002_config_version_sequence"),
    ]

    operations = [
        migrations.AlterField(
            model_name="auditentry",
            name="at",
            field=models.DateTimeField(db_index=True, default=django.utils.timezone.now, verbose_name="time"),
        ),
        migrations.AddField(
            model_name="auditentry",
            name="seq",
            field=models.BigIntegerField(editable=False, null=True, verbose_name="position in chain"),
        ),
        migrations.AddField(
            model_name="auditentry",
            name="prev_hash",
            field=models.CharField(default="", editable=False, max_length=64, verbose_name="previous record's hash"),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="auditentry",
            name="hash",
            field=models.CharField(default="", editable=False, max_length=64, verbose_name="hash"),
            preserve_default=False,
        ),
        migrations.RunPython(chain_existing, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="auditentry",
            name="seq",
            field=models.BigIntegerField(editable=False, verbose_name="position in chain"),
        ),
        migrations.AddConstraint(
            model_name="auditentry",
            constraint=models.UniqueConstraint(fields=("park_code", "seq"), name="uniq_audit_chain_seq"),
        ),
        migrations.RunSQL(APPEND_ONLY, DROP_APPEND_ONLY),
    ]
