"""Issue #7 item 11: a poll of an unreachable OPC UA server is one clean log line, not a task traceback."""

import logging

import pytest

from apps.ingestion.tasks import poll_source
from carbonpark.embedded import free_port
from tests.conftest import add_source


@pytest.mark.django_db
def test_poll_task_of_an_unreachable_opcua_server_logs_one_line(park, caplog):
    port = free_port()  # nothing listens there
    source = add_source(park, "TP01-UA-0009", ["CS010201"], protocol="opcua", settings={"opcua": {
        "endpoint": f"opc.tcp://127.0.0.1:{port}/carbonpark/", "timeout": 2,
        "nodes": [{"node": "ns=2;s=Meter1.Energy", "data_code": "CS010201", "unit": "kWh"}]}})
    with caplog.at_level(logging.WARNING, logger="carbonpark.poller"):
        assert poll_source(source.pk) == 0  # the task's body, run here (not through a broker)
    lines = [r for r in caplog.records if r.name == "carbonpark.poller"]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING and lines[0].exc_info is None
    assert "TP01-UA-0009" in lines[0].getMessage() and f"127.0.0.1:{port}" in lines[0].getMessage()
