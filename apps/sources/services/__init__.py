"""Writes for data sources, their device state, downlink commands and key rings."""

from apps.sources.services.sources import SOURCE_FIELDS, save_source

__all__ = ["SOURCE_FIELDS", "save_source"]
