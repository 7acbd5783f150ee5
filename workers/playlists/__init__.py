"""Scheduled playlists on the worker side: the beat scheduler and the output files."""
