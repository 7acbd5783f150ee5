"""One module per step of a job: submit, poll, download, finalize."""
