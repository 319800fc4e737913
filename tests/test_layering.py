"""The house's layering (ARCHITECTURE.md "Layout", issue #8 item 6), read from the code itself (AST):

- apps/protocols and apps/edge import no Django and no Django app of ours (the gateway box runs them alone);
  apps/protocols is not an installed app;
- apps/core, the ground floor, imports no other app (function-local imports count);
- the key ring, the downlink commands and the rotation of apps/sources/services import one another in one
  direction only: any of them imports first, none dodges a cycle with a function-local import;
- only apps/quality/services.py writes alarms (ORM or SQL).

Each scanner is also shown a made-up module that breaks its rule, so a scanner that finds nothing is caught."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

from django.conf import settings

REPO = Path(__file__).resolve().parent.parent
APPS = REPO / "apps"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(tree: ast.AST, module: str, is_package: bool = False):
    """(imported module, line, function-local?) for every import of ``tree``; relative ones resolved."""
    package = module if is_package else module.rpartition(".")[0]
    local_lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import | ast.ImportFrom):
                    local_lines.add(inner.lineno)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, node.lineno in local_lines
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            yield name, node.lineno, node.lineno in local_lines
            for alias in node.names:  # `from apps import quality` imports apps.quality
                if name == "apps":
                    yield f"apps.{alias.name}", node.lineno, node.lineno in local_lines
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name)
              and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            yield node.args[0].value, node.lineno, True


def _python_files(*roots: Path):
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def _scan(path: Path, source: str | None = None):
    source = path.read_text(encoding="utf-8") if source is None else source
    return ast.parse(source, filename=str(path)), _module_name(path)


# --- protocols and the edge agent: no Django ---------------------------------------------------------------------

FRAMEWORK = {"django", "rest_framework", "drf_spectacular", "guardian", "simple_history", "celery",
             "django_celery_beat", "csp", "carbonpark"}


def framework_imports(path: Path, allowed_apps: set[str], source: str | None = None) -> list[str]:
    tree, module = _scan(path, source)
    found = []
    for name, line, _local in _imports(tree, module, path.name == "__init__.py"):
        top = name.split(".")[0]
        ours = name.split(".")[1] if top == "apps" and "." in name else None
        if top in FRAMEWORK or (ours is not None and ours not in allowed_apps):
            found.append(f"{path.relative_to(REPO)}:{line} imports {name}")
    return found


def parser_imports(path: Path, source: str | None = None) -> list[str]:
    """framework_imports of a batch parser module, plus any import of the batch app outside its parsers."""
    found = framework_imports(path, {"protocols", "batch"}, source)
    tree, module = _scan(path, source)
    found += [f"{path.relative_to(REPO)}:{line} imports {name}"
              for name, line, _local in _imports(tree, module, path.name == "__init__.py")
              if name.startswith("apps.batch") and not name.startswith("apps.batch.parsers")]
    return found


def test_protocols_and_the_edge_agent_import_no_django_and_no_django_app():
    found = [f for p in _python_files(APPS / "protocols") for f in framework_imports(p, {"protocols"})]
    found += [f for p in _python_files(APPS / "edge") for f in framework_imports(p, {"protocols", "edge"})]
    # The batch file parsers (issue #11) read files on a client's machine too, before sending.
    # They import one another and the codecs, nothing else of the batch app (its models, its loader).
    parsers = list(_python_files(APPS / "batch" / "parsers"))
    found += [f for p in parsers for f in parser_imports(p)]
    assert not found, "\n".join(found)
    assert len(parsers) >= 6
    made_up = "from apps.batch.models import FileLoad\nfrom django.db import connection\nfrom . import common\n"
    assert len(parser_imports(APPS / "batch" / "parsers" / "made_up.py", made_up)) == 2
    assert len(list(_python_files(APPS / "protocols"))) >= 20  # the codecs, pollers and simulators are there
    assert not [a for a in settings.INSTALLED_APPS if a.startswith("apps.protocols")]
    bad = "import asyncio\nfrom django.utils import timezone\n\ndef f():\n    from ...ingestion import errors\n"
    assert len(framework_imports(APPS / "protocols" / "codecs" / "made_up.py", {"protocols"}, bad)) == 2
    assert framework_imports(APPS / "edge" / "made_up.py", {"protocols", "edge"}, "from apps import sources\n")


# --- core: the ground floor imports no app -----------------------------------------------------------------------

def app_imports(path: Path, own: str, source: str | None = None) -> list[str]:
    tree, module = _scan(path, source)
    return [f"{path.relative_to(REPO)}:{line} imports {name}" + (" (in a function)" if local else "")
            for name, line, local in _imports(tree, module, path.name == "__init__.py")
            if name.startswith("apps.") and name.split(".")[1] != own]


def test_core_imports_no_other_app():
    found = [f for p in _python_files(APPS / "core") for f in app_imports(p, "core")]
    assert not found, "\n".join(found)
    bad = "def handle():\n    from apps.accounts.models import Park\n    import apps.sources.models\n"
    assert len(app_imports(APPS / "core" / "made_up.py", "core", bad)) == 2


# --- sources services: one direction, no cycle dodged ------------------------------------------------------------

SOURCE_SERVICES = APPS / "sources" / "services"


def local_service_imports(path: Path, source: str | None = None) -> list[str]:
    tree, module = _scan(path, source)
    return [f"{path.relative_to(REPO)}:{line} imports {name} in a function"
            for name, line, local in _imports(tree, module, path.name == "__init__.py")
            if local and name.startswith("apps.sources")]


def test_source_services_import_in_any_order_without_function_local_imports():
    found = [f for p in _python_files(SOURCE_SERVICES) for f in local_service_imports(p)]
    assert not found, "\n".join(found)
    assert local_service_imports(SOURCE_SERVICES / "made_up.py",
                                 "def f():\n    from apps.sources.services.commands import create_command\n")
    # Each module imported first, in a fresh set of service modules: a cycle fails with an ImportError.
    names = [_module_name(p) for p in _python_files(SOURCE_SERVICES)]
    assert {"apps.sources.services.commands", "apps.sources.services.keys", "apps.sources.services.rotation"} <= set(
        names)
    script = (
        "import importlib, sys, django\n"
        "django.setup()\n"
        f"for first in {names!r}:\n"
        "    for m in [m for m in sys.modules if m.startswith('apps.sources.services')]:\n"
        "        del sys.modules[m]\n"
        "    importlib.import_module(first)\n"
        "    for m in " + repr(names) + ":\n"
        "        importlib.import_module(m)\n"
        "print('ok')\n")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "carbonpark.settings"}
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


# --- alarms: written by the quality app's service only -----------------------------------------------------------

ALARM_SQL = re.compile(r"\b(insert\s+into|update|delete\s+from|truncate(\s+table)?|copy)\s+\"?quality_alarm\b",
                       re.IGNORECASE)
WRITES = {"create", "bulk_create", "update", "bulk_update", "get_or_create", "update_or_create", "delete", "save"}


def _chain_names(node: ast.AST):
    """Names along a call chain such as Alarm.objects.filter(...).update: Alarm, objects, filter."""
    while True:
        if isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Attribute):
            yield node.attr
            node = node.value
        elif isinstance(node, ast.Subscript):
            node = node.value
        elif isinstance(node, ast.Name):
            yield node.id
            return
        else:
            return


def alarm_writes(path: Path, source: str | None = None) -> list[str]:
    tree, module = _scan(path, source)
    # The ORM is looked at in modules that import the quality app's models (the edge agent has an Alarm of its
    # own); SQL and the reverse managers (alarm_set) everywhere.
    model = any(name.startswith("apps.quality.models") or name == "apps.quality"
                for name, _line, _local in _imports(tree, module, path.name == "__init__.py"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and ALARM_SQL.search(node.value):
            found.append(f"{path.relative_to(REPO)}:{node.lineno} writes quality_alarm in SQL")
        elif isinstance(node, ast.Call):
            func = node.func
            if model and isinstance(func, ast.Name | ast.Attribute) and getattr(
                    func, "id", getattr(func, "attr", None)) == "Alarm":
                found.append(f"{path.relative_to(REPO)}:{node.lineno} makes an Alarm")
            elif isinstance(func, ast.Attribute) and func.attr in WRITES:
                names = set(_chain_names(func.value))
                if (model and "Alarm" in names) or "alarm_set" in names:
                    found.append(f"{path.relative_to(REPO)}:{node.lineno} writes Alarm with .{func.attr}()")
    return found


def test_only_the_quality_service_writes_alarms():
    allowed = APPS / "quality" / "services.py"
    roots = [APPS, REPO / "carbonpark", REPO / "scripts", REPO / "bench"]
    found = [f for p in _python_files(*roots) if p != allowed for f in alarm_writes(p)]
    assert not found, "\n".join(found)
    assert alarm_writes(allowed), "the quality service writes alarms: the scanner must see it"
    bad = ("from apps.quality.models import Alarm\n\n"
           "def f(source):\n"
           "    Alarm.objects.filter(source=source).update(state='closed')\n"
           "    source.alarm_set.all().delete()\n"
           "    Alarm(code='E1').save()\n"
           "    cur.execute('UPDATE quality_alarm SET count = 0')\n")
    assert {int(f.split(":")[1].split()[0]) for f in alarm_writes(APPS / "sources" / "made_up.py", bad)} == {4, 5, 6, 7}
