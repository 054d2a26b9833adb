"""JSON over HTTP, as a client of `kg serve` sends it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


def http_json(url: str, method: str = "GET", body: Any = None, timeout: float = 60) -> tuple[int, Any]:
    """One request, `body` sent as JSON: the status and the decoded JSON answer, an HTTP error's too."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
