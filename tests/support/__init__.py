"""Helpers shared by the test suites (imported as `support.*`; fixtures stay in conftest.py)."""
