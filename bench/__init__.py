"""Benchmarks (see README.md): ``python -m bench.http_ingest``, ``python bench/admin_browser.py``."""
