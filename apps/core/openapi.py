"""The OpenAPI document tells the truth about errors (interfaces.md §3): every operation lists the error
answers it can give, each with the one error body of the published table.

drf-spectacular documents only the success answers by default; clients generated from the document (and
schemathesis in CI, `make fuzz-api`) would then meet undocumented 400/401/403/404 bodies."""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    """The error body of interfaces.md §3: a stable code, a message a person can act on, and where it
    applies. ``errors`` details a form's fields when several are wrong (E1011)."""

    code = serializers.RegexField(r"^E\d{4}$", help_text="stable code of GET /api/v1/errors")
    message = serializers.CharField(help_text="in the caller's language (Accept-Language: zh-hans or en)")
    field = serializers.CharField(required=False, help_text="the field or header at fault")
    index = serializers.IntegerField(required=False, help_text="the record at fault in a batch")
    errors = serializers.DictField(required=False, help_text="every field at fault with its messages")

    class Meta:
        ref_name = "Error"


def error_response(description: str) -> OpenApiResponse:
    return OpenApiResponse(response=ErrorSerializer, description=description)


# What every operation can answer besides its success: the handler (apps.core.api.exception_handler) gives
# each one the Error body. 503 comes with Retry-After when the database is unreachable.
COMMON_ERRORS = {
    "400": "invalid input (E1001 not JSON, E1011 field errors, ...)",
    "401": "E1007 not authenticated: missing, unknown or revoked token",
    "403": "E1008 not allowed for this token, user or park",
    "404": "E1010 not found (also an unknown page or cursor)",
    "503": "a dependency (database) is unreachable: retry after Retry-After seconds",
}
URI_TOO_LONG = "URI too long (more than about 4 KB of path and query): answered by the web server"
BODY_ERRORS = {
    "413": "E1004 body too large",
    "415": "E1006 unsupported Content-Type",
}


class CarbonParkAutoSchema(AutoSchema):
    def _park_rules(self) -> dict[str, str]:
        """The park actions this operation needs, from the view's ``access_rules`` (apps/accounts/permissions.py:
        keyed by the viewset action, else the method; "GET format=csv" style variants): {"": "view", …}."""
        rules = getattr(self.view, "access_rules", None) or {}
        key = getattr(self.view, "action", None) or self.method
        found = {}
        for name, action in rules.items():
            base, _, variant = name.partition(" ")
            if base == key and action is not None:
                found[variant] = str(action)
        return found

    def _forbidden_text(self) -> str:
        rules = self._park_rules()
        if not rules:
            return COMMON_ERRORS["403"]
        need = "; ".join(f"`{a}`" + (f" with {v}" if v else "") for v, a in sorted(rules.items()))
        return (f"E1008 the caller lacks the park action {need} (in no park at all, or not in this object's park; "
                "docs/roles.md lists the roles that hold it). An object of a park the caller may not view "
                "answers 404, like an unknown one")

    def get_description(self):
        description = super().get_description() or ""
        rules = self._park_rules()
        if rules:
            need = "; ".join(f"`{a}`" + (f" (with {v})" if v else "") for v, a in sorted(rules.items()))
            description = (description + "\n\n" if description else "") + f"Park action needed: {need} (docs/roles.md)."
        return description

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        extra = dict(COMMON_ERRORS, **{"403": self._forbidden_text()})
        if self.method in ("POST", "PUT", "PATCH"):
            extra.update(BODY_ERRORS)
        if not self.get_auth():
            extra.pop("401")
            extra.pop("403")
        for code, description in extra.items():
            if code not in responses:
                responses[code] = self._get_response_for_code(error_response(description), code)
        # A request line past the server's limit never reaches the application: gunicorn (or the nginx
        # front) answers 414 with its own small page, not the Error body.
        responses.setdefault("414", self._get_response_for_code(OpenApiResponse(description=URI_TOO_LONG), "414"))
        return responses
