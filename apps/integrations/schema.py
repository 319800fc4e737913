"""OpenAPI description of the open API's bearer token (drf-spectacular extension, loaded by AppConfig.ready)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class OpenBearerScheme(OpenApiAuthenticationExtension):
    target_class = "apps.integrations.api.OpenTokenAuthentication"
    name = "OpenPlatformBearer"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": "`Bearer <token>` from POST /api/v1/open/auth (HMAC-SHA256 of app_id + timestamp + "
                               "nonce with the platform's secret, interfaces.md §6); calls must come from the "
                               "platform's IP whitelist. docs/third-party-platforms.md."}
