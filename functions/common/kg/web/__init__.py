"""The web view `kg serve` serves at `/`: a page of plain modules (index.html, app.js, style.css) over
the same-origin API, and its graph-drawing library (Cytoscape.js), which scripts/install.sh installs
from the npm registry into vendor/ (package.json, package-lock.json). Nothing comes from a CDN."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

HERE = Path(__file__).resolve().parent
VENDOR_HINT = "run scripts/install.sh: it installs the web view's libraries from the npm registry"

# URL path -> file: only these are served (never a path joined from the request).
ASSETS: dict[str, tuple[str, str]] = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/web/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/web/style.css": ("style.css", "text/css; charset=utf-8"),
    "/web/vendor/cytoscape.min.js": ("vendor/cytoscape.min.js", "text/javascript; charset=utf-8"),
}
# The page loads only its own scripts and styles; the API is the same origin.
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


class Asset(BaseModel):
    status: int
    content_type: str
    body: bytes


def asset(path: str) -> Asset | None:
    """The page or one of its files for a GET of `path`; None when `path` is not one (an API route)."""
    known = ASSETS.get(path)
    if known is None:
        return None
    name, content_type = known
    try:
        return Asset(status=200, content_type=content_type, body=(HERE / name).read_bytes())
    except FileNotFoundError:
        body = f'{{"error": "{name} is not installed: {VENDOR_HINT}"}}'.encode()
        return Asset(status=404, content_type="application/json", body=body)
