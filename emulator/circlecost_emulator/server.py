"""The HTTP plumbing: a threading server on loopback that hands plain requests to the emulator.

Handler threads are joined when the server closes, and open keep-alive connections are shut
down first, so stopping an emulator leaves no thread or socket behind.
"""

import logging
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Final

from circlecost_emulator.admin import ADMIN_PREFIX, AdminApi
from circlecost_emulator.messages import HttpRequest, Response, error_response
from circlecost_emulator.state import API_PREFIX, EmulatorState

logger = logging.getLogger(__name__)

MAX_BODY_BYTES: Final = 1 << 20
DOWNLOAD_PREFIX: Final = "/downloads/"


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: EmulatorState, admin: AdminApi) -> None:
        self.state = state
        self.admin = admin
        self.stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, EmulatorRequestHandler)

    def dispatch(self, request: HttpRequest) -> Response:
        path = request.path
        if path.startswith(ADMIN_PREFIX):
            return self.admin.handle(request)
        if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
            return self.state.api(request)
        if path.startswith(DOWNLOAD_PREFIX):
            return self.state.download(request)
        return error_response(404, "Not found.")

    def process_request(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: object
    ) -> None:
        if isinstance(request, socket.socket):
            with self._connections_lock:
                self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket | tuple[bytes, socket.socket]) -> None:
        if isinstance(request, socket.socket):
            with self._connections_lock:
                self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: object
    ) -> None:
        # A client that hangs up mid-response is normal here; anything else is a bug to show.
        hung_up = isinstance(sys.exc_info()[1], ConnectionError | TimeoutError)
        level = logging.DEBUG if hung_up else logging.ERROR
        logger.log(level, "request from %s failed", client_address, exc_info=True)

    def close(self) -> None:
        """Stop serving, wake slow responses, drop idle connections, join handler threads."""
        self.stopping.set()
        self.shutdown()
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the client
        self.server_close()


class EmulatorRequestHandler(BaseHTTPRequestHandler):
    server: EmulatorHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "circlecost-emulator/1"
    sys_version = ""
    # A client that connects and goes quiet must not pin a handler thread forever.
    timeout = 30

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in two writes; without NODELAY, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every keep-alive response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._serve()

    # Every method goes through the same routing, so even the unsupported ones answer in JSON.
    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = do_GET

    def _serve(self) -> None:
        response = self._respond()
        if response.delay > 0:
            self.server.stopping.wait(response.delay)
        self._send(response)

    def _respond(self) -> Response:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            return error_response(400, "Content-Length is not a number.")
        if length > MAX_BODY_BYTES:
            self.close_connection = True  # the body stays unread, so the connection is unusable
            return error_response(413, "Request body too large.")
        request = HttpRequest(
            method=self.command,
            target=self.path,
            circle_token=self.headers.get("Circle-Token"),
            authorization=self.headers.get("Authorization"),
            body=self.rfile.read(length) if length > 0 else b"",
        )
        try:
            return self.server.dispatch(request)
        except Exception:
            # A bug in the emulator must reach the client as the 500 CircleCI would send.
            logger.exception("the emulator failed on %s %s", self.command, self.path)
            return error_response(500, "Internal server error.")

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def date_time_string(self, timestamp: float | None = None) -> str:
        # The Date header follows the emulator clock, like everything else a client observes.
        moment = self.server.state.clock.now().timestamp() if timestamp is None else timestamp
        return super().date_time_string(moment)

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("%s %s", self.address_string(), format % args)
