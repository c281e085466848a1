"""ASGI entry point for `uvicorn hub.api.main:app` (settings read from the environment)."""

from hub.api.app import create_app
from hub.logs import configure
from hub.settings import Settings

_settings = Settings()
configure(_settings.log_level)
app = create_app(_settings)
