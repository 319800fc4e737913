"""Deep pages of the readings browser (issue #9, 50 million readings): the seek paginator returns exactly the
rows a plain OFFSET would, across timestamps shared by several sources, and no page link goes past CAP rows."""

import pytest
from django.contrib.auth import get_user_model

from apps.core.admin import SeekPaginator
from apps.ingestion.models import Reading
from apps.ingestion.services import ingest_readings
from tests.conftest import add_source


class SmallSeek(SeekPaginator):
    CAP = 40
    SEEK_FROM = 5


@pytest.fixture
def readings(park):
    sources = [add_source(park, f"TP01-EM-{i:04d}", ["CS010201"]) for i in range(3)]
    # 3 sources x 20 timestamps: every ts shared by 3 rows, so page boundaries fall inside a run of equal ts
    ingest_readings([{"sourceId": s.source_id, "timestamp": f"2026-11-23 10:{m:02d}:00", "value": m}
                     for m in range(20) for s in sources], channel="test", actor="test")
    assert Reading.objects.count() == 60


@pytest.mark.parametrize("order", [("-ts", "-pk"), ("ts", "-pk"), ("-ts", "pk")])
def test_seek_pages_are_the_offset_pages(readings, order):
    qs = Reading.objects.order_by(*order)
    wanted = list(qs.values_list("pk", flat=True))
    paginator = SmallSeek(qs, 7)
    assert paginator.num_pages == 40 // 7  # CAP rows deep at most, though 60 rows match
    for number in range(1, paginator.num_pages + 1):
        page = [r.pk for r in paginator.page(number).object_list]
        assert page == wanted[(number - 1) * 7: number * 7], number


def test_a_page_past_the_last_is_the_last(readings):
    paginator = SmallSeek(Reading.objects.order_by("-ts", "-pk"), 7)
    assert paginator.page(10_000).number == paginator.num_pages


def test_the_browser_answers_a_page_far_past_the_end(client, readings):
    client.force_login(get_user_model().objects.create_superuser("root", "r@example.invalid", "pw-123456789"))
    r = client.get("/ingestion/reading/?p=99999999")
    assert r.status_code == 200
