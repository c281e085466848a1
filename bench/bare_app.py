"""A bare FastAPI app for the reads benchmark: the same JSON as the hub's answers, from
memory, no database. Run under the same uvicorn settings as the hub's API.

BENCH_BARE_MESSAGE and BENCH_BARE_TRANSFERS name files holding one real answer of
`GET /v1/messages/{id}` and of `GET /v1/transfers?src_tx_hash=`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI


def _load(variable: str) -> Any:
    path = os.environ.get(variable)
    return json.loads(Path(path).read_text()) if path else {}


MESSAGE = _load("BENCH_BARE_MESSAGE")
TRANSFERS = _load("BENCH_BARE_TRANSFERS")

app = FastAPI()


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/bare/v1/messages/{message_id}")
def message(message_id: str) -> Any:
    return MESSAGE


@app.get("/bare/v1/transfers")
def transfers(src_tx_hash: str) -> Any:
    return TRANSFERS
