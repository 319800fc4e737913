"""Tests and benchmarks read only the repository (issue #7, item 10): no path outside the checkout.

A static check over every Python file of tests/ and bench/: no string naming the project's shared
reference tree or an absolute /work path, no escape above the repository root (``ROOT.parent``), no
relative ``../`` path. System executables and /proc are not project data and stay allowed."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCANNED = sorted([*ROOT.glob("tests/**/*.py"), *ROOT.glob("bench/**/*.py")])


def _escapes(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            if text.startswith(("/work", "../")) or "shared/reference" in text or "shared/spec" in text:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {text[:60]!r}")
        elif (isinstance(node, ast.Attribute) and node.attr == "parent" and isinstance(node.value, ast.Name)
              and node.value.id == "ROOT"):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: ROOT.parent")
    return found


def test_tests_and_benchmarks_read_only_the_repository():
    assert len(SCANNED) > 30
    bad = [hit for path in SCANNED if path.name != "test_repository_only.py" for hit in _escapes(path)]
    assert bad == [], "read the copy under tests/data/ instead (tests/data/README.md):\n" + "\n".join(bad)


def test_protocol_vectors_are_kept_in_the_repository():
    import json

    vectors = json.loads((ROOT / "tests" / "data" / "protocol-vectors.json").read_text(encoding="utf-8"))
    protocols = {v["protocol"] for v in vectors}
    assert {"HJ 212", "DL/T 645-2007", "DL/T 645-1997", "Modbus RTU"} <= protocols
    assert all(v["source"] for v in vectors), "every vector names where it comes from"
