"""Meter registers to consumption (issue #12 item 2): settings and replacements, the set-based derivation, reads,
the API and the portal pages. docs/registers.md."""
