"""The readings table's index and constraint budget (issue #9; figures in docs/readings-indexes.md).

- The three deferred foreign keys of ingestion_reading (park, source, data item) go: checked per row at
  commit, they cost more than all its indexes together. The pipeline resolves these ids from the
  configuration it validated against and the one-way-in guard refuses every other writer; deleting a park,
  source or item through Django is still refused (PROTECT, in Python).
- ingestion_rejection: source_ref's two indexes go (the browser's search is icontains, which no b-tree
  serves), code's pattern (_like) index goes; the code filter reads (code, -received_at) newest first.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0002_park_object_permissions'),
        ('catalog', '0002_load_appendix_a'),
        ('ingestion', '0006_reading_scoped_pages'),
        ('sources', '0003_gateway_and_device_health'),
    ]

    operations = [
        migrations.AlterField(
            model_name='reading',
            name='data_item',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='catalog.dataitem', verbose_name='data item'),
        ),
        migrations.AlterField(
            model_name='reading',
            name='park',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='accounts.park', verbose_name='park'),
        ),
        migrations.AlterField(
            model_name='reading',
            name='source',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='sources.datasource', verbose_name='data source'),
        ),
        migrations.AlterField(
            model_name='rejection',
            name='code',
            field=models.CharField(max_length=8, verbose_name='error code'),
        ),
        migrations.AlterField(
            model_name='rejection',
            name='source_ref',
            field=models.CharField(blank=True, max_length=100, verbose_name='source ID as sent'),
        ),
        migrations.AddIndex(
            model_name='rejection',
            index=models.Index(fields=['code', '-received_at'], name='rejection_code_received'),
        ),
    ]
