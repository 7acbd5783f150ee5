"""A job's stored artifacts: download, verify, tag, inline audio, storage keys, manifest."""
