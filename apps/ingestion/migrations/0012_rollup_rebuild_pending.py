"""Rollups of the readings stored before rollups existed: the upgrade records a rebuild as pending, one row per
monthly partition (and one for the DEFAULT partition, month NULL), in ``ingestion_rollup_rebuild``. The beat
task ``rebuild-rollups`` then builds one partition per run, newest first, each with set-based statements
straight from the partition (apps/ingestion/rollup_rebuild.py), while the refresh keeps new readings current.
Queuing the whole history in the dirty log instead made new readings wait behind it for hours at 50 million
readings (docs/rollups.md). Like the dirty log, the table has no model: only the rollup modules touch it.

The dirty log is emptied here: every range it holds lies in a partition the rebuild recomputes whole from the
readings committed before that partition's turn, so nothing queued is lost. On a database that applied 0011 as
first written, that queue is the whole history, which the refresh would otherwise read range by range first.
Rows queued by ingest transactions still open when this runs are not visible to the DELETE, and stay."""

from django.db import migrations

CREATE = """
CREATE TABLE ingestion_rollup_rebuild (
    park_id bigint NULL, month date NULL, queued_at timestamptz NOT NULL DEFAULT now())
"""

QUEUE = r"""
INSERT INTO ingestion_rollup_rebuild (park_id, month)
SELECT NULL::bigint, to_date(substr(c.relname, 19), 'YYYY_MM')
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'ingestion_reading'::regclass AND c.relname ~ '^ingestion_reading_\d{4}_\d{2}$'
UNION ALL
SELECT NULL::bigint, NULL::date WHERE EXISTS (SELECT 1 FROM ingestion_reading_default)
"""


class Migration(migrations.Migration):

    dependencies = [("ingestion", "0011_rollup_queue_existing")]

    operations = [
        migrations.RunSQL(CREATE, "DROP TABLE ingestion_rollup_rebuild"),
        migrations.RunSQL(QUEUE, migrations.RunSQL.noop),
        migrations.RunSQL("DELETE FROM ingestion_rollup_dirty", migrations.RunSQL.noop),
    ]
