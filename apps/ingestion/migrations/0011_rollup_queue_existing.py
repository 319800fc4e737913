"""Queue the readings stored before rollups existed: one dirty row per series (its first and last reading), so
an upgraded database gets its rollups from the refresh task (apps/ingestion/rollups.py cuts long ranges into
pieces) instead of from a long migration. One aggregate over the readings: an index-only scan of the identity
key on a vacuumed table."""

from django.db import migrations

QUEUE = """
INSERT INTO ingestion_rollup_dirty (park_id, source_id, data_item_id, lo, hi)
SELECT s.park_id, r.source_id, r.data_item_id, r.lo, r.hi
FROM (SELECT source_id, data_item_id, min(ts) AS lo, max(ts) AS hi FROM ingestion_reading
      GROUP BY source_id, data_item_id) AS r
JOIN sources_datasource s ON s.id = r.source_id
"""


class Migration(migrations.Migration):

    dependencies = [("ingestion", "0010_rollups")]

    operations = [migrations.RunSQL(QUEUE, migrations.RunSQL.noop)]
