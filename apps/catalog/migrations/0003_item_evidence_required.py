
from django.db import migrations, models

# Items whose values stand on a document (R-6.3–6.5; .d): the net calorific value from a test report, the
# verified removals of a sink project, and every offset of Table 3 (certificates, vouchers, filings). A park
# administrator may change the flag per item in the catalog.
EVIDENCED = ["CS010102", "CK020202"]


def demand_evidence(apps, schema_editor):
    DataItem = apps.get_model("catalog", "DataItem")
    DataItem.objects.filter(park__isnull=True).filter(
        models.Q(code__in=EVIDENCED) | models.Q(code__startswith="CO")).update(evidence_required=True)


class Migration(migrations.Migration):

    dependencies = [
        ('catalog', '0002_load_appendix_a'),
    ]

    operations = [
        migrations.AddField(
            model_name='dataitem',
            name='evidence_required',
            field=models.BooleanField(default=False, help_text='values of this item entered in forms carry a supporting document: a test report, certificate or filing (R-6.3–6.5)', verbose_name='evidence required'),
        ),
        migrations.AddField(
            model_name='historicaldataitem',
            name='evidence_required',
            field=models.BooleanField(default=False, help_text='values of this item entered in forms carry a supporting document: a test report, certificate or filing (R-6.3–6.5)', verbose_name='evidence required'),
        ),
        migrations.RunPython(demand_evidence, migrations.RunPython.noop),
    ]
