"""The portal speaks Chinese by default and English on request; the zh_Hans catalog is complete and compiled."""

import gettext
import json
import re
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.utils import translation
from django.utils.functional import Promise

LC_MESSAGES = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES"
PO = LC_MESSAGES / "django.po"
JS_PO = LC_MESSAGES / "djangojs.po"  # admin JavaScript strings Django's own zh_Hans catalog lacks
PLACEHOLDER = re.compile(r"%\(\w+\)[sdifr]|%[sdif]|\{\w*\}")


def parse_po(path: Path) -> list[dict]:
    """A small .po reader: each entry's flags, msgid and msgstr (plural forms joined), header included."""
    entries, entry, key = [], None, None

    def unquote(line: str) -> str:
        body = line[line.index('"') + 1: line.rindex('"')]
        return body.encode("utf-8").decode("unicode_escape").encode("latin-1").decode("utf-8")

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if entry is None or (key == "msgstr" and line.startswith(("#", "msgid"))):
            entry = {"flags": set(), "msgid": "", "msgstr": "", "obsolete": False}
            entries.append(entry)
            key = None
        if not line:
            continue
        if line.startswith("#~"):
            entry["obsolete"] = True
        elif line.startswith("#,"):
            entry["flags"].update(f.strip() for f in line[2:].split(","))
        elif line.startswith("#"):
            continue
        elif line.startswith("msgid_plural"):
            key = "msgid_plural"
        elif line.startswith("msgid"):
            key = "msgid"
            entry["msgid"] += unquote(line)
        elif line.startswith("msgstr"):
            key = "msgstr"
            entry["msgstr"] += unquote(line)
        elif line.startswith('"') and key in ("msgid", "msgstr"):
            entry[key] += unquote(line)
    return [e for e in entries if e["msgid"] or e["msgstr"] or e["flags"]]


def _our_strings() -> set[str]:
    """Every lazily translated string our apps show: models (names, fields, help texts, choices),
    app names, admin titles, list filter titles, column and action descriptions."""
    found: set[str] = set()

    def add(value):
        if isinstance(value, Promise):
            with translation.override("en"):
                found.add(str(value))

    for config in apps.get_app_configs():
        if not config.name.startswith("apps."):
            continue
        add(config.verbose_name)
        for model in config.get_models():
            if model.__name__.startswith("Historical"):
                continue
            add(model._meta.verbose_name)
            add(model._meta.verbose_name_plural)
            for f in model._meta.get_fields():
                add(getattr(f, "verbose_name", None))
                add(getattr(f, "help_text", None))
                base = getattr(f, "base_field", None)
                for choices in (getattr(f, "choices", None), getattr(base, "choices", None)):
                    for _value, label in choices or ():
                        add(label)
    add(admin.site.site_header)
    add(admin.site.site_title)
    add(admin.site.index_title)
    for model, model_admin in admin.site._registry.items():
        if not model.__module__.startswith("apps."):
            continue
        for flt in model_admin.list_filter:
            add(getattr(flt, "title", None))
        for name in model_admin.list_display:
            add(getattr(getattr(model_admin, name, None), "short_description", None))
        for action in model_admin.actions or ():
            add(getattr(getattr(model_admin, action, None), "short_description", None))
    from apps.ingestion.models import Flag

    for label in Flag.LABELS.values():
        add(label)
    for _code, name in settings.LANGUAGES:
        add(name)
    return found


# --- the catalog itself ------------------------------------------------------------------------


@pytest.mark.parametrize("po", [PO, JS_PO], ids=["django", "djangojs"])
def test_every_entry_is_translated_and_none_is_fuzzy(po):
    entries = parse_po(po)
    header = [e for e in entries if e["msgid"] == ""]
    assert len(header) == 1 and "Language: zh_Hans" in header[0]["msgstr"]
    messages = [e for e in entries if e["msgid"] and not e["obsolete"]]
    assert len(messages) > (150 if po == PO else 5)
    assert not [e["msgid"] for e in entries if "fuzzy" in e["flags"]], "fuzzy entries left"
    assert not [e["msgid"] for e in messages if not e["msgstr"].strip()], "untranslated entries"
    for e in messages:
        assert sorted(PLACEHOLDER.findall(e["msgid"])) == sorted(PLACEHOLDER.findall(e["msgstr"])), e["msgid"]


@pytest.mark.parametrize("po", [PO, JS_PO], ids=["django", "djangojs"])
def test_compiled_catalog_matches_the_po(po):
    """The .mo is what Django reads: it must hold every entry of the .po (run compilemessages)."""
    with po.with_suffix(".mo").open("rb") as fh:
        catalog = gettext.GNUTranslations(fh)._catalog
    po = {e["msgid"]: e["msgstr"] for e in parse_po(po) if e["msgid"] and not e["obsolete"]}
    # a plural entry is kept under (msgid, n) in the compiled catalog; its first form is compared
    stale = {k: v for k, v in po.items() if catalog.get(k, catalog.get((k, 0))) != v}
    assert not stale, f"{len(stale)} entries differ from the .mo; run manage.py compilemessages -l zh_Hans"


@pytest.mark.django_db
def test_every_string_our_apps_show_is_in_the_catalog():
    """Catches a new gettext_lazy string that nobody ran makemessages for."""
    po = {e["msgid"] for e in parse_po(PO) if e["msgstr"]}
    missing = sorted(_our_strings() - po)
    assert not missing, f"not in locale/zh_Hans (run makemessages and translate): {missing}"


def test_domain_terms():
    with translation.override("zh-hans"):
        from django.utils.translation import gettext as _

        assert _("data source") == "数据源"
        assert _("reading") == "读数"
        assert _("alarm") == "告警"
        assert _("backfill") == "补传"
        assert _("unified social credit code") == "统一社会信用代码"
        assert _("real-time collection") == "实时采集"


# --- the portal ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_login_page_is_chinese_by_default(client):
    html = client.get("/login/").content.decode()
    assert '<html lang="zh-hans"' in html
    assert "CarbonPark · 零碳园区数据接入" in html
    assert "登录" in html
    # The language selector is there before signing in, posting to set_language with this page as next.
    assert 'action="/i18n/setlang/"' in html
    assert 'name="next" type="hidden" value="/login/"' in html
    assert '<option value="en" lang="en">English</option>' in html
    assert 'value="zh-hans" lang="zh-hans" selected>中文</option>' in html


@pytest.mark.django_db
def test_switch_to_english_and_back(client):
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/login/?next=/"})
    assert response.status_code == 302 and response["Location"] == "/login/?next=/"
    html = client.get("/login/?next=/").content.decode()
    assert '<html lang="en"' in html
    assert "CarbonPark · zero-carbon park data access" in html and "Log in" in html
    assert "零碳园区" not in html
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/login/"})
    assert "零碳园区数据接入" in client.get("/login/").content.decode()


@pytest.mark.django_db
def test_portal_is_chinese_until_the_user_chooses_even_for_an_english_browser(client):
    """PortalLocaleMiddleware: the portal ignores Accept-Language; only the language menu's cookie counts."""
    assert '<html lang="zh-hans"' in client.get("/login/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9").content.decode()
    client.post("/i18n/setlang/", {"language": "en", "next": "/login/"})
    assert '<html lang="en"' in client.get("/login/", HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9").content.decode()


def test_api_messages_follow_accept_language(client, db):
    en = client.get("/api/v1/readings", HTTP_ACCEPT_LANGUAGE="en").json()["message"]
    zh = client.get("/api/v1/readings").json()["message"]
    assert en.startswith("Not authenticated") and zh.startswith("未认证")


@pytest.mark.django_db
def test_admin_index_shows_translated_model_names(admin_client):
    html = admin_client.get("/").content.decode()
    for text in ("碳数据平台", "数据接入", "读数", "数据源", "数据项", "校验规则", "告警", "被拒记录", "园区",
                 "语言", 'id="language-form"'):
        assert text in html, text
    assert 'name="next" type="hidden" value="/"' in html
    admin_client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    html = admin_client.get("/").content.decode()
    for text in ("Carbon data platform", "Readings", "Data sources", "Validation rules", "Alarms"):
        assert text in html, text


@pytest.mark.django_db
def test_admin_javascript_catalog_is_complete_in_chinese(admin_client):
    """The two-box selector (a source's bound data codes) speaks Chinese too, not half English."""
    body = admin_client.get("/jsi18n/").content.decode()
    for text in ("全选%s", "要选择%s，请选中后点击“选择”箭头按钮。", "过滤"):
        assert json.dumps(text)[1:-1] in body, text


@pytest.mark.django_db
def test_alarm_message_follows_the_language(admin_client):
    from apps.quality.services import raise_alarm

    raise_alarm(park_id=None, source_id=None, kind="validation", code="E3001", message_zh="数值超出范围",
                message_en="Value out of range")
    html = admin_client.get("/quality/alarm/").content.decode()
    assert '<td class="field-message">数值超出范围</td>' in html and "提示信息" in html
    admin_client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    html = admin_client.get("/quality/alarm/").content.decode()
    assert '<td class="field-message">Value out of range</td>' in html


@pytest.mark.django_db
def test_changelist_filters_and_columns_are_translated(admin_client):
    html = admin_client.get("/ingestion/reading/").content.decode()
    for text in ("按数据源 ID", "按质量标记", "补传", "数据项"):
        assert text in html, text
    assert 'name="next" type="hidden" value="/ingestion/reading/"' in html
