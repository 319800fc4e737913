"""Helpers for tests that run asyncio devices beside Django."""


def closing(fn, *args, **kwargs):
    """Run fn in a worker thread and close that thread's database connection afterwards."""
    from django.db import connection

    try:
        return fn(*args, **kwargs)
    finally:
        connection.close()
