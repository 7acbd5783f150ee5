"""The `songqueue` command line: one module per command group."""
