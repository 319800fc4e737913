"""One way in, enforced by the database: rows of ingestion_reading are inserted, changed or deleted
only inside a transaction where ingest_readings has declared itself (set_config('carbonpark.writer',
'ingest_readings', true)). Anything else, an ORM call, a shell, another app, fails loudly."""

from django.db import migrations

GUARD = """
CREATE OR REPLACE FUNCTION ingestion_reading_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('carbonpark.writer', true), '') <> 'ingest_readings' THEN
        RAISE EXCEPTION 'readings are written only by ingest_readings (one way in)'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER ingestion_reading_one_way_in
    BEFORE INSERT OR UPDATE OR DELETE ON ingestion_reading
    FOR EACH STATEMENT EXECUTE FUNCTION ingestion_reading_guard();
"""

UNGUARD = """
DROP TRIGGER IF EXISTS ingestion_reading_one_way_in ON ingestion_reading;
DROP FUNCTION IF EXISTS ingestion_reading_guard();
"""


class Migration(migrations.Migration):
    dependencies = [("ingestion", "0001_initial")]
    operations = [migrations.RunSQL(GUARD, UNGUARD)]
