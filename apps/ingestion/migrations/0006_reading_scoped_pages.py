"""The readings browser as park staff open it (issue #8): every page is scoped to the user's parks.

- reading_park_ts covers source, data item and flags, so a scoped page filtered by them counts its rows
  from the index (the heap holds a park's rows one per page, in time order).
- Extended statistics tell the planner that a source (and a data item's code) implies its park: without them
  ``park_id = A AND source_id = S`` is estimated 100x too low and sorted from a bitmap scan instead of read
  in time order from reading_park_ts (bench/admin_browser.py: 663 ms instead of 63 ms)."""

from django.db import migrations, models

STATS = "CREATE STATISTICS IF NOT EXISTS reading_park_source_item (dependencies) ON park_id, source_id, data_item_id " \
        "FROM ingestion_reading"


class Migration(migrations.Migration):
    dependencies = [
        ("ingestion", "0005_rejection_raw_bytes"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="reading", name="reading_park_ts"),
        migrations.AddIndex(
            model_name="reading",
            index=models.Index(fields=["park", "-ts"], include=["source", "data_item", "flags"],
                               name="reading_park_ts"),
        ),
        migrations.RunSQL([STATS, "ANALYZE ingestion_reading"],
                          ["DROP STATISTICS IF EXISTS reading_park_source_item"]),
    ]
