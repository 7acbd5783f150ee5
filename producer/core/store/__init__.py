"""Records in Redis: the job store, the playlist run store, their keys, the spend ledger."""
