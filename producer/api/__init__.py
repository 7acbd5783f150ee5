"""The HTTP API (`songqueue api`): jobs, their events and songs, health, under API keys.

FastAPI on uvicorn (docs/http-api.md says why). It uses the producer's own request models
and the same `SongQueue` client as the CLI, and never imports `workers`.
"""
