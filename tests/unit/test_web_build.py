"""The dashboard the API serves (hub/web) is built from the sources in web/ as they are now."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def sources_digest() -> str:
    """What web/build.mjs stamps: sha256 over web/'s files, by sorted path, path and bytes."""
    digest = hashlib.sha256()
    web = ROOT / "web"
    for path in sorted(p.relative_to(ROOT).as_posix() for p in web.rglob("*") if p.is_file()):
        digest.update(path.encode() + b"\0")
        digest.update((ROOT / path).read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def test_the_built_dashboard_matches_its_sources() -> None:
    stamp = json.loads((ROOT / "hub" / "web" / "build.json").read_text())
    assert stamp["sources"] == sources_digest(), "hub/web is stale: run `make web`"


def test_the_built_page_loads_only_its_own_files() -> None:
    """Offline: every script and style the page loads is served by the hub itself."""
    index = (ROOT / "hub" / "web" / "index.html").read_text()
    assert "http://" not in index and "https://" not in index
    for name in ("assets/index-", ".js", ".css"):
        assert name in index
    for ref in [p for p in index.split('"') if p.startswith("/assets/")]:
        assert (ROOT / "hub" / "web" / ref.lstrip("/")).is_file(), ref
