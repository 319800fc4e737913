"""Benchmark: readings/s through the MQTT channel, from simulated devices over a real Mosquitto to
PostgreSQL by two ``manage.py run_mqtt_ingest`` consumers; publish -> commit latency; the readings
lost; 10 000 concurrent device connections.

    .venv/bin/python -m bench.mqtt_ingest            # 1 000 000 readings, 30 s at 10 000 readings/s
    .venv/bin/python -m bench.mqtt_ingest --quick    # 200 000 readings, 10 s

What it does:

1. Database: DATABASE_URL if set (treated as disposable), else ``carbonpark_bench_mqtt`` on
   127.0.0.1:5432, dropped and recreated, migrated; one park, ``--sources`` sources bound to CS010201
   (bench.http_ingest.database). Each phase starts on truncated ingestion tables.
2. Broker: tests.brokers.Mosquitto in a temporary directory, on a free port, with production's limits
   and log levels (deploy/mosquitto/mosquitto.conf, without TLS, passwords and ACL), persistence on.
   This process raises its soft open-file limit to the hard one first: the broker and the connection
   holder inherit it.
3. Consumers: ``--consumers`` processes ``manage.py run_mqtt_ingest --url <broker> --client-id
   bench-cN --shared`` (MQTT 5, persistent sessions, the shared subscription, PUBACK after commit).
4. Devices: ``--publishers`` spawned processes, each with ``--connections`` paho-mqtt connections
   (gateways), publish QoS 1 JSON arrays of one source's next 10-50 readings to
   ``carbonpark/{park}/{sourceId}/data``; timestamps are unique per source, so nothing is a duplicate.
   Payloads are built before the clock starts; a reading counts as published once the broker PUBACKs it.
5. Saturation: ``--readings`` as fast as the devices can publish (the broker queues what the consumers
   have not taken). Sustained rate = readings stored / (first publish -> last commit). Lost = published
   - stored, after the consumers drained (gives up after ``--drain-idle`` s without a commit).
   Poisoned (``--poison-every``, default 1 000; 0 skips it): the same run again with one poison message
   every that many messages besides (a NUL byte and 5 000 levels of JSON nesting, alternately, issue #7):
   no good reading may be lost, every poison message must end as one rejection, and the throughput is
   printed beside the clean run's with their ratio (target ≥ 0.90).
6. Connections: one spawned asyncio process opens ``--hold`` raw TCP connections with a hand-built MQTT
   3.1.1 CONNECT (clean session, keep-alive 120 s), checks every CONNACK, PINGs every 60 s; after the
   latency phase every connection must answer a PINGREQ. The broker's own $SYS count is printed too.
7. Latency: ``--rate`` readings/s for ``--latency-seconds`` while those connections are held
   (rate-limited publishers). Latency of a message = the time its batch's commit became visible minus
   the time publish() was called: a thread polls ingestion_ingestbatch every ``--poll`` s (the batch
   row commits with its readings), so each figure is late by at most one poll plus a query. It is split
   at the reading's ``received_at`` (taken when the consumer starts working on the batch).

CPU shares per phase (psutil, bench.http_ingest.cpu): consumers, PostgreSQL, Mosquitto, publishers,
the connection holder, anything else. Exit status 0 when nothing was lost and every held connection
answered (not on the throughput and latency targets).

Modules: ``common`` (constants), ``broker`` (Mosquitto, $SYS watcher), ``consumers``, ``devices``
(publisher processes), ``holder`` (idle connections), ``monitor`` (commit times), ``phases`` (a
publishing phase and its figures), ``report`` (printing), ``__main__`` (options and the run).
"""
