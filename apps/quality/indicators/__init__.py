"""Quality indicators (R-9.1, R-9.1.1–R-9.1.4) per park, source, data item and month: computed set-based into
``quality_indicator_month`` (``compute``), read through the access seam (``selectors``), shown on the quality
dashboard (``dashboard``) and served by ``GET /api/v1/quality/indicators`` (``api``). docs/quality-indicators.md."""
