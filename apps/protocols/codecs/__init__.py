"""Wire codecs: pure functions from bytes to dataclasses and back (ARCHITECTURE.md rule 2).

No Django, no I/O, no clock. Each module names the clause of interfaces.md it implements; callers turn
the codes they report (E5xxx) into messages (on the platform, the ingestion app's error table).
"""
