"""Load the 37 data items of Tables 1–3 with their Appendix A codes (catalog.csv) and enumerations."""

from django.db import migrations


def load(apps, schema_editor):
    from apps.catalog.services import load_standard_catalog

    load_standard_catalog(apps.get_model("catalog", "CatalogClass"), apps.get_model("catalog", "DataItem"),
                          apps.get_model("catalog", "Enumeration"))


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
