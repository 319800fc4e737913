"""Configuration versions come from a sequence: nextval never rolls back, so a version number is never
given to two different states (a rolled-back change cannot leave a stale cache looking current)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("core", "0001_initial")]
    operations = [migrations.RunSQL("CREATE SEQUENCE IF NOT EXISTS core_config_version_seq",
                                    "DROP SEQUENCE IF EXISTS core_config_version_seq")]
