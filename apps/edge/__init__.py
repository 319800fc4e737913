"""CarbonPark edge agent: runs on a gateway box next to the meters (no Django imports anywhere in this package).

    python -m apps.edge --config edge.toml

Polls its devices, range-checks locally, buffers on disk (SQLite, WAL), publishes over MQTT (TLS, QoS 1,
Last Will) and resends the buffer in time order after an outage. See README.md in this folder.
"""
