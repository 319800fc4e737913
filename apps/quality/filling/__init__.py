"""Filling gaps (R-9.3.2.1) and repairing minor anomalies (R-9.3.1): services.py, with its SQL in sql.py."""

from apps.quality.filling.services import (  # noqa: F401
    FillRun,
    can_resend,
    fill_gap_now,
    fill_gaps,
    ignore_gap,
    repair_anomalies,
    supersede_fills,
)
