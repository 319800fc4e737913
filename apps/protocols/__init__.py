"""Field protocols in pure Python, no Django (ARCHITECTURE.md layout): codecs (HJ 212, DL/T 645, Modbus
register maps, TLV, the CPE1 envelope), pollers (Modbus TCP/RTU, DL/T 645, OPC UA) and device simulators.

Not a Django app: imported alike by the platform's ingestion app and by the edge agent (``apps.edge``),
whose ``carbonpark-edge`` wheel ships the parts it drives. Modules here import nothing else of ours;
tests/test_layering.py holds them to it."""
