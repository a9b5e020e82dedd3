"""Serving a WSGI app from a background thread on loopback: the simulators and the API front."""

from __future__ import annotations

import threading
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

# How often serve_forever checks for shutdown: tests start and stop a server per test.
POLL_INTERVAL_SECONDS = 0.02


class BackgroundServer:
    def __init__(self, app: Any, name: str) -> None:
        self._app = app
        self._name = name
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.url: str | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(
        self, port: int = 0, host: str = "127.0.0.1", request_handler: type[WSGIRequestHandler] | None = None
    ) -> str:
        if self._server is not None:
            raise RuntimeError(f"{self._name} already running at {self.url}")
        server = make_server(host, port, self._app, threaded=True, request_handler=request_handler)
        self._server = server
        self.url = f"http://{host}:{server.server_port}"
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": POLL_INTERVAL_SECONDS},
            name=f"{self._name}:{server.server_port}",
            daemon=True,
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join()
        self._server = self._thread = None
        self.url = None
