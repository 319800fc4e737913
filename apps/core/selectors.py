from django.db import connection

from apps.core.services import INGEST_CONFIG


def config_version(name: str = INGEST_CONFIG) -> int:
    with connection.cursor() as cur:
        cur.execute("SELECT version FROM core_configversion WHERE name = %s", [name])
        row = cur.fetchone()
    return row[0] if row else 0
