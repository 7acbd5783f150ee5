"""Pydantic models both sides share: requests, the provider specs, the job record and its
state sets, playlist runs, validation errors.

Imports neither celery nor redis nor requests (tests/test_providers.py checks)."""
