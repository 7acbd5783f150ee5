"""A job's stored artifacts: the download (downloader.py), the MP3 (mp3.py: tags, one-pass write,
check), inline audio, the finished assets (assets.py), the manifest and storage keys (manifest.py)."""
