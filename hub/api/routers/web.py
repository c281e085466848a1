"""The dashboard (the built files in hub/web) at `/`, and Prometheus metrics at `/metrics`."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.concurrency import run_in_threadpool

from hub.domain.errors import NotFoundError

WEB = Path(__file__).resolve().parents[2] / "web"
router = APIRouter(include_in_schema=False)


@router.get("/")
def dashboard() -> FileResponse:
    """The dashboard: the islands map, the live feed, search and each asset's supply."""
    index = WEB / "index.html"
    if not index.is_file():
        raise NotFoundError("the dashboard is not built: run `make web`")
    return FileResponse(index, headers={"Cache-Control": "no-cache"})


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus text format: this API's process metrics and the registry's, read now."""
    registry: CollectorRegistry = request.app.state.metrics
    body = await run_in_threadpool(generate_latest, registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def mount_assets(app: FastAPI) -> None:
    """The dashboard's scripts and styles (hashed names: cached for good)."""
    assets = WEB / "assets"
    if assets.is_dir():
        app.mount("/assets", StaticFiles(directory=assets), name="assets")
