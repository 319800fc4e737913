"""OpenAPI description of the token authentication (drf-spectacular extension, loaded by AppConfig.ready)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "apps.accounts.authentication.ApiTokenAuthentication"
    name = "ApiToken"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "`Token <key>`: a key issued to a device or integrator for one park "
                               "(admin, or `manage.py issue_token --park <code> <name>`)."}
