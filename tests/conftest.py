import pytest
from rest_framework.test import APIClient

from apps.accounts.models import Park
from apps.accounts.services import issue_token, save_park
from apps.catalog.models import DataItem
from apps.core.validators import uscc_check_char
from apps.sources.services import save_source


def make_uscc(seed: str = "91320500MA1PARK01") -> str:
    first17 = seed[:17]
    return first17 + uscc_check_char(first17)


@pytest.fixture
def park(db) -> Park:
    return save_park(actor="test", code="TP01", name_zh="测试园区", name_en="Test park", time_zone="Asia/Shanghai",
                     uscc=make_uscc())


@pytest.fixture
def other_park(db) -> Park:
    return save_park(actor="test", code="TP02", name_zh="另一园区", time_zone="Asia/Shanghai")


def add_source(park, source_id, codes, **extra):
    return save_source(actor="test", source_id=source_id, park=park, name=source_id,
                       data_items=list(DataItem.objects.filter(code__in=codes)), **extra)


@pytest.fixture
def meter(park):
    """An electricity meter bound to one code (so dataCode may be omitted)."""
    return add_source(park, "TP01-EM-0001", ["CS010201"])


@pytest.fixture
def monitor(park):
    """A wastewater monitor bound to two codes."""
    return add_source(park, "TP01-WW-0001", ["CS030201", "CS030202"])


@pytest.fixture
def token_key(park):
    _token, key = issue_token(actor="test", park=park, name="integrator")
    return key


@pytest.fixture
def api(token_key) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_key}")
    return client


def pytest_collection_modifyitems(config, items):
    """A transactional test flushes the database when it ends, and the flush re-creates content types and
    permissions; the next test restoring the serialized database then collides with them (seen in CI). Every
    transactional test therefore restores the serialized database: refused at collection otherwise."""
    bad = [item.nodeid for item in items
           if (m := item.get_closest_marker("django_db")) and m.kwargs.get("transaction")
           and not m.kwargs.get("serialized_rollback")]
    if bad:
        raise pytest.UsageError("transactional tests need serialized_rollback=True: " + ", ".join(bad))
