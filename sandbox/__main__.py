"""``python -m sandbox``: run the local gateway (see ``sandbox.server.main``)."""

from sandbox.server import main

raise SystemExit(main())
