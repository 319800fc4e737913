"""Which failures make a consumer wait for the database and which are one message's own (issue #7 item 1):
real errors from a real PostgreSQL, classified by apps.core.db.database_unavailable."""

import psycopg
import pytest
from django.db import connection, transaction

from apps.core.db import database_unavailable
from tests.brokers import free_port
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def raised(fn) -> BaseException:
    try:
        fn()
    except BaseException as exc:  # noqa: BLE001 - the error itself is the subject
        return exc
    raise AssertionError("nothing raised")


def conninfo(port=None) -> str:
    s = connection.settings_dict
    return (f"host={s['HOST'] or '127.0.0.1'} port={port or s['PORT'] or 5432} user={s['USER']} "
            f"dbname={s['NAME']} connect_timeout=3")


def test_a_message_that_the_database_refuses_is_its_own_failure():
    with connection.cursor() as cur:
        assert not database_unavailable(raised(lambda: cur.execute("SELECT %s::text", ["a\x00b"])))  # NUL
    with connection.cursor() as cur:
        assert not database_unavailable(raised(lambda: cur.execute("SELECT 1/0")))
    with connection.cursor() as cur:
        assert not database_unavailable(raised(lambda: cur.execute("SELECT 'x'::int")))
    assert not database_unavailable(RecursionError()) and not database_unavailable(ValueError("bad"))


def test_a_database_that_is_down_unreachable_or_read_only_is_waited_for():
    assert database_unavailable(raised(lambda: psycopg.connect(conninfo(free_port()))))  # nothing listens

    def read_only_insert():
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute("SET TRANSACTION READ ONLY")
            cur.execute("CREATE TEMP TABLE t (x int)")
    assert database_unavailable(raised(read_only_insert))  # 25006, as on a standby after a failover

    s = connection.settings_dict
    with TcpProxy(s["HOST"] or "127.0.0.1", int(s["PORT"] or 5432)) as proxy:
        conn = psycopg.connect(conninfo(proxy.port), autocommit=True)
        conn.execute("SELECT 1")
        proxy.cut()
        assert database_unavailable(raised(lambda: conn.execute("SELECT 1")))      # connection lost
        assert database_unavailable(raised(lambda: conn.execute("SELECT 1")))      # and closed since
        conn.close()
