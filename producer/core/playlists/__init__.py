"""Playlist definitions (TOML), their schedules, and starting a run."""
