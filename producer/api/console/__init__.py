"""The web console at /console: server-rendered pages (Jinja2) and a little JavaScript."""
