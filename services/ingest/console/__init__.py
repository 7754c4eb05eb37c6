"""The web console: server-rendered pages over the public API (docs/console.md).

Nothing here runs at import: `routes.install_console()` loads the templates
and static files once, when the app is created.
"""
