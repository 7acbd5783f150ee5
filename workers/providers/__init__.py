"""One module per gateway, all behind the protocol in `workers.providers.base`."""
