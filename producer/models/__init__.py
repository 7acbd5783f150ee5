"""Pydantic models both sides share: requests, the job record, playlist runs, validation errors.

Imports neither celery nor redis nor requests (a test checks)."""
