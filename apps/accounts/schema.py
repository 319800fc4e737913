"""OpenAPI description of the token authentication (drf-spectacular extension, loaded by AppConfig.ready)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "apps.accounts.authentication.ApiTokenAuthentication"
    name = "ApiToken"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "`Token <key>`: a key issued to a device or integrator for one park "
                               "(admin, or `manage.py issue_token --park <code> [--role device] <name>`). "
                               "Its role decides what it may call: a device token only pushes readings "
                               "(GET /api/v1/roles, docs/roles.md). A session of the portal works too: "
                               "the person's role in each park decides."}
