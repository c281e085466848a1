"""ASGI entry point for `uvicorn hub.api.main:app` (settings read from the environment)."""

import sys

from hub.api.app import create_app
from hub.logs import configure
from hub.settings import SettingsError, load_settings

try:
    _settings = load_settings()
except SettingsError as exc:
    # A clear line and a non-zero exit, not a traceback from inside the ASGI server.
    sys.exit(f"error: {exc}")
configure(_settings.log_level)
app = create_app(_settings)
