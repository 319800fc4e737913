"""XLSX templates of published form versions and their import (R-7.3.4); layout decisions in ``layout``."""

from apps.entry.excel.reader import ReadResult, import_template, read_filled, template_version
from apps.entry.excel.template import template

__all__ = ["ReadResult", "import_template", "read_filled", "template", "template_version"]
