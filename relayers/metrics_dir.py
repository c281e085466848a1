"""Where a worker's processes write their metrics (prometheus_client's multiprocess mode)."""

from __future__ import annotations

import os
import tempfile


def choose_metrics_dir() -> None:
    """A worker with HUB_METRICS_PORT and no PROMETHEUS_MULTIPROC_DIR gets a fresh directory
    of its own (one directory per worker: the exporter adds up every file in it)."""
    if os.environ.get("HUB_METRICS_PORT") and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="islands-metrics-")
