"""Device simulators for tests and the demo."""
