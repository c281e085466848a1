"""Celery workers: `celery -A relayers worker -Q relay,deliver` and `celery -A relayers beat`;
validators as `celery -A relayers worker -Q validator-1` with their own HUB_VALIDATOR_KEY."""

from relayers.app import app

__all__ = ["app"]
