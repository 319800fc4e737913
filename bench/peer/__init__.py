"""Benchmark: CarbonPark's MQTT consumers against the peer an integrator would build instead, a Node-RED
flow, side by side in one run on the same Mosquitto, publishers and measurement (issue #9).

    .venv/bin/python -m bench.peer              # make bench-peer: slots ours, peer, peer, ours + SIGKILL runs
    .venv/bin/python -m bench.peer --no-kill --order ours,peer --latency-seconds 5   # shorter

The peer (bench/peer/flow.json, settings.js; Node-RED 5.0.7 on Node 22 and pg 8 from npm, pinned in
package.json/package-lock.json and installed by the bench itself on first run, bench.peer.install):
mqtt-in (QoS 1, MQTT 5, persistent session, ``$share/peer/carbonpark/+/+/data``) -> a function node
parsing and checking each record (finite number, parsable timestamp, sourceId matching the topic) ->
join (33 messages or 50 ms) -> a function node with ``pg`` (a pool of 2) doing one multi-row
``INSERT ... ON CONFLICT (source_id, data_code, ts) DO NOTHING`` into ``peer_reading``, a table whose
only index is that key (bench.peer.lean, created in the bench database). Two instances, each its own
userDir and free loopback port, share the subscription.

Ours: bench.mqtt_ingest's two ``manage.py run_mqtt_ingest --shared`` consumers, unchanged.

The run: one Mosquitto (bench.mqtt_ingest.broker); the database as bench.mqtt_ingest's (DATABASE_URL
if set, else a fresh ``carbonpark_bench_peer``). Slots in ``--order`` (default ours, peer, peer, ours so
that a drift of the machine's other load falls on both alike); a slot starts that side's two processes,
warms up (5 000 readings), runs a saturation run (``--readings`` as fast as bench.mqtt_ingest's 2
publisher processes x 4 connections publish, QoS 1, 10-50 readings per message, 500 sources) and a
rate-limited run per ``--rates`` (5 000 and 10 000 readings/s, ``--latency-seconds`` each), then stops
them and clears their MQTT sessions, so that a stopped side never holds the other's messages. Each
side's last slot ends with a SIGKILL run: a saturation run in which the first process is killed once
``--kill-at`` of the readings are stored and started again at once (same client id, same session);
lost = readings the publishers got PUBACKs for - readings stored.

Figures, the same for both sides: sustained rate = stored / (first publish -> last commit); latency =
publish() -> the commit of the transaction that stored the message's first reading, seen by a poller
every 10 ms (ours: bench.mqtt_ingest.monitor on the batch-log rows; peer: bench.peer.lean's snapshot
monitor); CPU per 1 000 readings (bench.http_ingest.cpu) of the consumer processes (2 x run_mqtt_ingest,
2 x node) and of PostgreSQL (postmaster, the bench database's backends, shared helpers).

Modules: ``install`` (npm ci into the cache), ``nodered`` (the instances), ``lean`` (table, snapshot
monitor), ``phases`` (a peer phase, the killer), ``report``, ``__main__`` (options, slots).
"""
