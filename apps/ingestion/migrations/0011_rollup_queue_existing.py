"""Superseded by 0012_rollup_rebuild_pending, and now a no-op.

As first written, this queued every existing series in the dirty log over its whole history (one range per
series). The refresh then read that history range by range through the identity index, at about 16 000
readings/s, which takes hours at 50 million readings, and rollups of new readings waited behind it. The
migration keeps its name so that databases which applied it keep a consistent history. 0012 empties what it
queued there and records a bulk rebuild per partition instead (apps/ingestion/rollup_rebuild.py)."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [("ingestion", "0010_rollups")]

    operations = [migrations.RunSQL(migrations.RunSQL.noop, migrations.RunSQL.noop)]
