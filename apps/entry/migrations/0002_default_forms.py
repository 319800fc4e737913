"""The platform's default forms (issue #10 item 3, R-7.3.1): for the catalog items people enter, load from files
or stage (methods manual, batch), published as version 1 with the items' catalog attributes resolved into them.
Parks copy one to make it their own. The content is apps/entry/data/default_forms_0002.json, frozen with this
migration: a later change is a later migration publishing version 2."""

import json
from pathlib import Path

from django.db import migrations
from django.utils import timezone

DATA = Path(__file__).resolve().parent.parent / "data" / "default_forms_0002.json"


def install(apps, schema_editor):
    from apps.entry.catalog import item_info
    from apps.entry.definitions import check_definition, content_hash, resolve

    DataItem = apps.get_model("catalog", "DataItem")
    Form = apps.get_model("entry", "Form")
    FormVersion = apps.get_model("entry", "FormVersion")
    items = {i.code: item_info(i) for i in DataItem.objects.filter(park__isnull=True, is_active=True)
             .select_related("enumeration")}
    now = timezone.now().replace(microsecond=0)  # see apps.entry.services._now
    for spec in json.loads(DATA.read_text(encoding="utf-8"))["forms"]:
        definition = spec["definition"]
        problems = check_definition(definition, items.get)
        if problems:
            raise RuntimeError(f"default form {spec['code']}: {[p.as_dict('en') for p in problems]}")
        if Form.objects.filter(code=spec["code"]).exists():
            continue
        form = Form.objects.create(park=None, code=spec["code"], name_zh=spec["name_zh"], name_en=spec["name_en"],
                                   definition=definition)
        resolved = resolve(definition, items.get)
        FormVersion.objects.create(form=form, number=1, definition=resolved, content_hash=content_hash(resolved),
                                   published_at=now, published_by_label="migration entry.0002_default_forms")


def remove(apps, schema_editor):
    Form = apps.get_model("entry", "Form")
    FormVersion = apps.get_model("entry", "FormVersion")
    codes = [spec["code"] for spec in json.loads(DATA.read_text(encoding="utf-8"))["forms"]]
    with schema_editor.connection.cursor() as cur:  # published versions are immutable: lift the guard here only
        cur.execute("ALTER TABLE entry_formversion DISABLE TRIGGER entry_formversion_immutable")
        FormVersion.objects.filter(form__code__in=codes, form__park__isnull=True).delete()
        cur.execute("ALTER TABLE entry_formversion ENABLE TRIGGER entry_formversion_immutable")
    Form.objects.filter(code__in=codes, park__isnull=True).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("entry", "0001_forms"),
        ("catalog", "0002_load_appendix_a"),
    ]

    operations = [migrations.RunPython(install, remove)]
