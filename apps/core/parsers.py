"""Request parsing shared by every API: DRF's JSON parser and a JSON-object field that answer with a
code for what would otherwise crash or fail in the database (issue #7). Kept apart from apps.core.api:
DRF reads DEFAULT_PARSER_CLASSES while rest_framework.views is being imported, which apps.core.api does."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, parsers, serializers

from apps.core import errors
from apps.core.text import is_storable, pg_safe


def find_unstorable(data, limit: int = 100_000) -> tuple[str, str] | None:
    """(top-level field, where and what) of the first text PostgreSQL cannot store (NUL, a lone
    surrogate) in a decoded JSON body, keys included; None when there is none. Iterative: any depth."""
    stack = [((), data)]
    seen = 0
    while stack and seen < limit:
        path, value = stack.pop()
        seen += 1
        if isinstance(value, str):
            if not is_storable(value):
                return _where(path), ".".join(map(str, path)) or "body"
        elif isinstance(value, dict):
            for k, v in value.items():
                if isinstance(k, str) and not is_storable(k):
                    return _where((*path, k)), "a key in " + (".".join(map(str, path)) or "the body")
                stack.append(((*path, k), v))
        elif isinstance(value, list):
            stack.extend(((*path, i), v) for i, v in enumerate(value))
    return None


def _where(path: tuple) -> str:
    return pg_safe(str(path[0])) if path else "body"


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, made to answer with a code for what it let through: nesting deeper than the
    interpreter's recursion limit (E1001 instead of a crash), and text PostgreSQL cannot store (E1016,
    naming the field) in any string of the body."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(_("JSON nested too deeply")) from None
        bad = find_unstorable(data)
        if bad is not None:
            raise errors.CarbonParkError(errors.E1016, field=bad[0],
                                         detail=f"{pg_safe(bad[1])}: NUL or an unpaired surrogate")
        return data


class ObjectField(serializers.JSONField):
    """A JSON object (settings, command params), also when it comes as text from a form: ``null``, a
    list, a number, nesting deeper than the interpreter can decode, or text PostgreSQL cannot store
    are refused as invalid input (E1011) naming the field."""

    default_error_messages = {
        "object": _("must be a JSON object, got {got}"),
        "unstorable": _("{where} holds NUL or an unpaired surrogate, which cannot be stored"),
        "deep": _("JSON nested too deeply"),
    }

    def to_internal_value(self, data):
        try:
            value = super().to_internal_value(data)
        except RecursionError:
            self.fail("deep")
        if not isinstance(value, dict):
            self.fail("object", got="null" if value is None else type(value).__name__)
        bad = find_unstorable(value)
        if bad is not None:
            self.fail("unstorable", where=pg_safe(bad[1]))
        return value
