"""The Python client a backend service uses: SongQueue, links, fetch, callbacks' shared parts."""
