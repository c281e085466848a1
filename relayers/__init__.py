"""Celery workers: `celery -A relayers worker -Q relay,deliver` and `celery -A relayers beat`;
validators as `celery -A relayers worker -Q validator-1` with their own HUB_VALIDATOR_KEY."""

from relayers.metrics_dir import choose_metrics_dir

# Before anything imports prometheus_client: a worker that serves metrics (HUB_METRICS_PORT)
# counts in multiprocess mode, so its prefork children's values are added up.
choose_metrics_dir()

from relayers.app import app  # noqa: E402 - after the metrics mode is chosen

__all__ = ["app"]
