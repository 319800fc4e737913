"""Is the database down, or did one message make a statement fail?

A consumer must tell the two apart (R-5.2.2.4, house rule 8): only a database that cannot be reached
makes it keep a message and retry; any other failure is the message's own, and the message becomes a
rejection so that the stream moves on.
"""

from __future__ import annotations

import psycopg
from django.db import utils as django_db

# SQLSTATEs that say nothing about the statement's data: connection exceptions (08), insufficient
# resources (53: disk full, out of memory, too many connections), operator intervention (57: shutdown,
# cannot connect now, statement cancelled), system errors (58), transaction rollback (40: deadlock,
# serialization), lock not available (55P03), and a database that turned read-only (25006: a failover, a
# standby). Class 54 (program limit exceeded) is left out: a statement too large or too complex fails
# again however often it is retried.
_TRANSIENT_CLASSES = frozenset({"08", "53", "57", "58", "40"})
_TRANSIENT_STATES = frozenset({"55P03", "55006", "25006"})


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def database_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) says the database is down, unreachable, read-only or the
    connection was lost: worth retrying the same work later. False for anything a retry would only
    repeat (bad data, a bug, a limit): the caller isolates the message at fault instead."""
    for e in _chain(exc):
        if isinstance(e, psycopg.InterfaceError):
            return True
        if isinstance(e, psycopg.Error):
            state = e.sqlstate
            if state is None:  # raised by the client: a lost connection, or data it refused to send
                return isinstance(e, psycopg.OperationalError)
            return state[:2] in _TRANSIENT_CLASSES or state in _TRANSIENT_STATES
    # Django's wrappers without a psycopg cause (e.g. "connection already closed").
    return isinstance(exc, django_db.InterfaceError | django_db.OperationalError)
