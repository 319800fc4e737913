"""Rollups (issue #9 item 4, docs/rollups.md): the aggregate table and its dirty log.

``ingestion_rollup_dirty`` is an append-only heap with no index and no key: every ingest batch adds one row per
series it touched (apps/ingestion/store.py), the refresh task takes them oldest first and deletes them. An index
would cost the write path on every batch and serve one query that reads a few thousand rows at most. Django has
no model for it: only apps/ingestion/rollups.py reads or writes it."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0002_park_object_permissions'),
        ('catalog', '0002_load_appendix_a'),
        ('ingestion', '0009_reading_flagged_park'),
        ('sources', '0003_gateway_and_device_health'),
    ]

    operations = [
        migrations.RunSQL(
            "CREATE TABLE ingestion_rollup_dirty (park_id bigint NOT NULL, source_id bigint NOT NULL, "
            "data_item_id bigint NOT NULL, lo timestamptz NOT NULL, hi timestamptz NOT NULL, "
            "queued_at timestamptz NOT NULL DEFAULT now())",
            "DROP TABLE ingestion_rollup_dirty",
        ),
        migrations.CreateModel(
            name='Rollup',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('interval', models.CharField(choices=[('h', 'hourly'), ('d', 'daily'), ('m', 'monthly')], max_length=1, verbose_name='interval')),
                ('bucket', models.DateTimeField(verbose_name='bucket start')),
                ('count', models.IntegerField(verbose_name='count')),
                ('sum', models.FloatField(verbose_name='sum')),
                ('min', models.FloatField(verbose_name='minimum')),
                ('max', models.FloatField(verbose_name='maximum')),
                ('last', models.FloatField(verbose_name='last value')),
                ('last_ts', models.DateTimeField(verbose_name='time of the last value')),
                ('updated_at', models.DateTimeField(verbose_name='updated')),
                ('data_item', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='catalog.dataitem', verbose_name='data item')),
                ('park', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='accounts.park', verbose_name='park')),
                ('source', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='sources.datasource', verbose_name='data source')),
            ],
            options={
                'verbose_name': 'rollup',
                'verbose_name_plural': 'rollups',
                'indexes': [models.Index(fields=['park', 'interval', '-bucket'], name='rollup_park_bucket')],
                'constraints': [models.UniqueConstraint(fields=('source', 'data_item', 'interval', 'bucket'), name='uniq_rollup_bucket')],
            },
        ),
    ]
