"""A tiny HTTP endpoint standing in for AWS where moto cannot show a behaviour (a held request, a gone client)."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeEndpoint:
    """Answers every request with one fixed error; ``hold()`` keeps requests waiting until ``release()``."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        self.status, self.error_type, self.message = status, error_type, message
        self.requests: list[tuple[str, str, bytes]] = []
        self.request_arrived = threading.Event()
        self._released = threading.Event()
        self._released.set()
        self.url = ""

    def hold(self) -> None:
        """Keep every request waiting until :meth:`release`."""
        self._released.clear()

    def release(self) -> None:
        """Answer the waiting requests and every later one at once."""
        self._released.set()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                endpoint.requests.append((self.command, self.path, body))
                endpoint.request_arrived.set()
                endpoint._released.wait(timeout=60)
                payload = f'{{"__type": "{endpoint.error_type}", "message": "{endpoint.message}"}}'.encode()
                self.send_response(endpoint.status)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("x-amzn-ErrorType", endpoint.error_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


@contextmanager
def fake_endpoint(status: int, error_type: str, message: str = "fake endpoint") -> Iterator[FakeEndpoint]:
    """Serve a :class:`FakeEndpoint` on 127.0.0.1 for the ``with`` block."""
    endpoint = FakeEndpoint(status, error_type, message)
    server = ThreadingHTTPServer(("127.0.0.1", 0), endpoint.handler())
    server.daemon_threads = True
    endpoint.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield endpoint
    finally:
        endpoint.release()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
