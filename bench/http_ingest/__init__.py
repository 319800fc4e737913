"""Benchmark: readings/s through POST /api/v1/readings, served as in production, against PostgreSQL,
next to the raw idempotent COPY rate of the same rows.

    .venv/bin/python -m bench.http_ingest            # 1 000 000 readings in 1 000-record batches
    .venv/bin/python -m bench.http_ingest --quick    # 100 000 readings
    .venv/bin/python -m bench.http_ingest --profile  # where the time of one batch goes (in-process)

What it does:

1. Database: DATABASE_URL if set (treated as disposable: its ingestion tables are truncated), else a
   dedicated ``carbonpark_bench`` on 127.0.0.1:5432, dropped and recreated. ``manage.py migrate``,
   then one park, ``--sources`` sources bound to CS010201 and one API token, through the services.
2. Data: N readings, ``sourceId`` round-robin over the sources, one minute apart per source, park
   local time; every request body is serialised with orjson before any clock starts.
3. HTTP: ``gunicorn carbonpark.wsgi -c carbonpark/gunicorn.conf.py`` (PORT/HOST/WEB_CONCURRENCY
   from the command line, a free port by default; ``--gunicorn-config`` for another file, e.g.
   main's before a change), ``--clients`` client processes (http.client, one kept-alive connection
   each while the server keeps it). Warm-up with empty batches, then the clock runs from the first request to the
   last answer. Every answer must be 200 with accepted == batch size; the stored count must equal
   the readings sent.
4. Raw: the same rows as Python tuples (already normalized: UTC datetimes, floats), on a freshly
   truncated ingestion_reading (same indexes, same one-way-in trigger), psycopg 3 directly: per
   transaction ``SELECT set_config('carbonpark.writer','ingest_readings', true)`` (the same guard
   cost every ingest_readings transaction pays), binary COPY into a temp staging table, then
   ``INSERT INTO ingestion_reading ... SELECT ... ORDER BY source_id, data_item_id, ts
   ON CONFLICT (source_id, data_item_id, ts) DO NOTHING``, commit. Run in ``--batch``-row
   transactions (the HTTP path's unit) and in ``--raw-big-txn``-row ones, each with 1 and with
   <cores> loader connections (``--raw-conns``), each on a fresh table. The ratio HTTP/raw is taken
   against the best ``--batch``-row run (the machine's raw capacity at the HTTP path's commit
   granularity); the ratio against the best run of all is printed beside it.
   Not in the raw path: the ingestbatch log row, RETURNING, JSON, normalisation, auth.

Machine CPU is sampled with psutil during each phase: clients, gunicorn workers, PostgreSQL (our
database's backends and the server's helpers), and whatever else ran (other people's work skews
every figure: the run says so). Exit status 0 when nothing was lost or doubled (not on targets).

Modules: ``common`` (constants, output helpers), ``database`` (bench DB, fixtures, table resets),
``data`` (request bodies and raw rows), ``server`` (gunicorn), ``cpu`` (CPU accounting),
``clients`` (HTTP client processes), ``raw`` (raw COPY baseline), ``profiling`` (``--profile``),
``report`` (printing), ``__main__`` (options and the run).
"""
