"""schemathesis hooks for scripts/fuzz_api.py (loaded through SCHEMATHESIS_HOOKS).

The tus endpoints (POST and PATCH /api/v1/uploads/…) take their chunks as `application/offset+octet-stream`, raw
bytes that schemathesis has no serializer for: arbitrary bytes are generated for them, so the upload server is
fuzzed like the rest (its headers come from the schema's parameters)."""

import schemathesis
from hypothesis import strategies as st

schemathesis.openapi.media_type("application/offset+octet-stream", st.binary(max_size=4096))
