"""The demo park `make run` shows: setup, stream and simulators' wiring (management commands only)."""
