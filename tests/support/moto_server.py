"""moto as a server on 127.0.0.1, for code that reaches AWS through an endpoint URL (the `kg` command
in a subprocess, with AWS_ENDPOINT_URL) rather than through moto's in-process mock.

The server runs in this process, on a thread, over moto's global backends: `routed_lambdas` and
`serialize_moto_dynamodb` patch them here and the server serves the patched backends. Step Functions
executes definitions, and invokes Lambda tasks through boto3 at `http://localhost:$MOTO_PORT`: the
caller sets MOTO_PORT to `server.port` while the server runs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from unittest import mock

from tests.support.sfn import MOTO_CONFIG


@dataclass(frozen=True)
class MotoServer:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def moto_server(config: dict | None = None) -> Iterator[MotoServer]:
    """A moto server on a free port, configured as `tests.support.sfn.MOTO_CONFIG` says (Step Functions
    executing, Lambda without Docker) through its `/moto-api/config` endpoint. That configuration is
    moto's process-wide one: it is restored when the server stops, so that later mocks start as before."""
    from moto.core.config import default_user_config
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per request otherwise
    server = MotoServer("127.0.0.1", free_port())
    threaded = ThreadedMotoServer(ip_address=server.host, port=server.port, verbose=False)
    with mock.patch.dict(default_user_config):
        threaded.start()
        try:
            request = urllib.request.Request(f"{server.url}/moto-api/config", method="POST",
                                             data=json.dumps(config or MOTO_CONFIG).encode())
            urllib.request.urlopen(request, timeout=10).read()
            yield server
        finally:
            threaded.stop()
