"""JSON over HTTP, as a client of `kg serve` sends it."""

from __future__ import annotations

import json
import subprocess
import time
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


def wait_until_serving(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    """Until the server started as `process` answers GET `url`/openapi.json: it does once it has
    opened the database. Fails at once if the process has exited, with what it wrote if it was piped."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode}: {process.communicate()}")
        try:
            urllib.request.urlopen(url + "/openapi.json", timeout=2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} did not answer within {timeout} s") from None
            time.sleep(0.2)
