"""Channels adapt what arrives (MQTT messages, HTTP bodies, files …) into reading records for
ingest_readings, and never store anything themselves."""
