"""One second named writer, enforced by the database (ARCHITECTURE.md rule 1): rows of corrections_revision
are inserted only inside a transaction where revise_readings has declared itself (set_config('carbonpark.writer',
'revise_readings', true)), and never updated or deleted. The readings' own guard (ingestion 0002) still refuses
every change of a stored reading: a correction is a new row here, beside it.

The effective value of a reading (the latest revision, else the value stored at ingest) has one SQL spelling for
every reader that works in SQL (rollups, exports): the function corrections_effective_value and the view
corrections_effective_reading."""

from django.db import migrations

GUARD = """
CREATE OR REPLACE FUNCTION corrections_revision_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        RAISE EXCEPTION 'revisions are append-only (no %)', TG_OP USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF coalesce(current_setting('carbonpark.writer', true), '') <> 'revise_readings' THEN
        RAISE EXCEPTION 'revisions are written only by revise_readings'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER corrections_revision_one_writer
    BEFORE INSERT OR UPDATE OR DELETE ON corrections_revision
    FOR EACH STATEMENT EXECUTE FUNCTION corrections_revision_guard();

CREATE OR REPLACE FUNCTION corrections_effective_value(p_source bigint, p_item bigint, p_ts timestamptz,
                                                       p_raw double precision)
RETURNS double precision LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce((SELECT v.value FROM corrections_revision v
                     WHERE v.source_id = p_source AND v.data_item_id = p_item AND v.ts = p_ts
                     ORDER BY v.id DESC LIMIT 1), p_raw)
$$;

CREATE VIEW corrections_effective_reading AS
SELECT r.id, r.park_id, r.source_id, r.data_item_id, r.ts, r.text_value, r.status, r.flags,
       r.value AS raw_value, coalesce(rv.value, r.value) AS effective_value, rv.id AS revision_id
FROM ingestion_reading r
LEFT JOIN LATERAL (SELECT v.id, v.value FROM corrections_revision v
                   WHERE v.source_id = r.source_id AND v.data_item_id = r.data_item_id AND v.ts = r.ts
                   ORDER BY v.id DESC LIMIT 1) rv ON true;
"""

UNGUARD = """
DROP VIEW IF EXISTS corrections_effective_reading;
DROP FUNCTION IF EXISTS corrections_effective_value(bigint, bigint, timestamptz, double precision);
DROP TRIGGER IF EXISTS corrections_revision_one_writer ON corrections_revision;
DROP FUNCTION IF EXISTS corrections_revision_guard();
"""


class Migration(migrations.Migration):
    dependencies = [("corrections", "0001_initial"), ("ingestion", "0008_reading_partitions")]
    operations = [migrations.RunSQL(GUARD, UNGUARD)]
