"""A stand-in for the stack's REST API (API Gateway, IAM authorization, Lambda proxy integration).

moto's API Gateway does not invoke Lambda proxy integrations (and none at all in server mode), so a
test that calls the deployed API through its URL gets this: a local HTTP server under
`http://127.0.0.1:<port>/<stage>/` that refuses a request without a SigV4 signature for
`execute-api` (403, as API Gateway answers), turns the others into the REST proxy event API Gateway
sends, and answers with what the handler returns. The signature's shape is checked, not its value.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.support.sfn import ACCOUNT, FakeLambdaContext


@dataclass
class ApiRequest:
    method: str
    path: str
    authorization: str


@dataclass
class LocalRestApi:
    """`with LocalRestApi(handler) as api:` serves `api.url`; `api.requests` records each request."""

    handler: Callable[[dict, Any], dict]
    stage: str = "v1"
    function_name: str = "kg-api"
    requests: list[ApiRequest] = field(default_factory=list)

    def __enter__(self) -> LocalRestApi:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                api._serve(self)

            do_POST = do_DELETE = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/{self.stage}/"

    def _serve(self, http: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(http.path)
        path = "/" + parts.path.removeprefix(f"/{self.stage}/").lstrip("/")
        authorization = http.headers.get("Authorization", "")
        self.requests.append(ApiRequest(http.command, path, authorization))
        length = int(http.headers.get("Content-Length") or 0)
        body = http.rfile.read(length).decode() if length else None
        signed = (authorization.startswith("AWS4-HMAC-SHA256 ") and "/execute-api/aws4_request" in authorization
                  and http.headers.get("X-Amz-Date"))
        if not signed or not parts.path.startswith(f"/{self.stage}/"):
            status, headers, payload = 403, {}, json.dumps({"message": "Missing Authentication Token"})
        else:
            event = proxy_event(http.command, path, dict(http.headers), dict(parse_qsl(parts.query)) or None, body,
                                self.stage)
            response = self.handler(event, FakeLambdaContext(function_name=self.function_name))
            status, headers, payload = response["statusCode"], response.get("headers") or {}, response.get("body") or ""
        data = payload.encode()
        http.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            http.send_header(name, value)
        http.send_header("Content-Length", str(len(data)))
        http.end_headers()
        http.wfile.write(data)


def proxy_event(method: str, path: str, headers: dict[str, str], query: dict[str, str] | None, body: str | None,
                stage: str) -> dict[str, Any]:
    """The REST API's Lambda proxy event for a request on a route without path parameters."""
    return {
        "resource": path, "path": path, "httpMethod": method, "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query, "multiValueQueryStringParameters": None,
        "pathParameters": None, "stageVariables": None,
        "requestContext": {"resourcePath": path, "httpMethod": method, "stage": stage,
                           "requestId": str(uuid.uuid4()), "accountId": ACCOUNT, "path": f"/{stage}{path}",
                           "identity": {"sourceIp": "127.0.0.1"}},
        "body": body, "isBase64Encoded": False,
    }
