"""Batch file codes (E91xx, interfaces.md §7): E910x–E912x refuse a file as a whole (nothing of it is stored),
E915x refuse one row (the rest of the file is loaded). The texts live beside the parsers, which are pure
(apps/batch/parsers/codes.py); each code is registered here once, so the published table lists it."""

from apps.batch.parsers.codes import TEXTS
from apps.core.errors import define


def _define(code: str, clause: str):
    return define(code, 400 if code != "E9127" else 403, *TEXTS[code], clause)


E9101 = _define("E9101", "R-8.2.1.2")
E9102 = _define("E9102", "R-8.2.1.2")
E9103 = _define("E9103", "R-7.2.1")
E9104 = _define("E9104", "R-7.2.1")
E9105 = _define("E9105", "R-7.2.1")
E9106 = _define("E9106", "R-8.2.1.2")
E9107 = _define("E9107", "R-8.2.1.2")
E9108 = _define("E9108", "R-8.2.1.2")
E9109 = _define("E9109", "R-7.2.1")
E9110 = _define("E9110", "R-7.2.1")
E9111 = _define("E9111", "R-7.2.1")
E9112 = _define("E9112", "R-7.2.1")
E9113 = _define("E9113", "R-7.2.1")
E9114 = _define("E9114", "R-7.2.1")
E9115 = _define("E9115", "R-7.2.1")
E9116 = _define("E9116", "R-7.2.1")
E9117 = _define("E9117", "R-7.2.1")
E9118 = _define("E9118", "R-8.2.2.2")
E9119 = _define("E9119", "R-8.2.2.2")
E9120 = _define("E9120", "R-8.2.2.2")
E9121 = _define("E9121", "R-7.2.1")
E9122 = _define("E9122", "R-7.2.1")
E9123 = _define("E9123", "R-7.2.1")
E9124 = _define("E9124", "R-8.2.1.2")
E9125 = _define("E9125", "R-7.2.1")
E9126 = _define("E9126", "R-7.2.1")
E9127 = _define("E9127", "R-7.1.2")
E9128 = _define("E9128", "R-7.4.1.2")
E9151 = _define("E9151", "R-7.2.1")
E9152 = _define("E9152", "R-7.2.1")
E9153 = _define("E9153", "R-7.2.1")
E9154 = _define("E9154", "R-7.2.1")
E9155 = _define("E9155", "R-7.2.1")
