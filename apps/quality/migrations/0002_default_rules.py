"""The rule library's starting set: clocks may not run ahead by more than five minutes, and the
standard's quantities are never negative (R-9.2.1: e.g. non-negative energy). Parks change or disable
them in the admin."""

from django.db import migrations


def seed(apps, schema_editor):
    Rule = apps.get_model("quality", "Rule")
    DataItem = apps.get_model("catalog", "DataItem")
    Rule.objects.create(name="采集时间不得超前 5 分钟 / timestamp at most 5 min ahead", kind="future_ts",
                        params={"tolerance_s": 300}, severity="reject")
    for item in DataItem.objects.filter(park__isnull=True, data_type="number").order_by("code"):
        Rule.objects.create(name=f"{item.code} {item.name_zh} 非负 / non-negative", kind="range",
                            params={"min": 0}, severity="reject", data_item=item)


class Migration(migrations.Migration):
    dependencies = [("quality", "0001_initial"), ("catalog", "0002_load_appendix_a")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
