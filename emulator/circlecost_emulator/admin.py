"""`/_emulator/...`: endpoints that steer the emulator (clock, faults, request log).

They need no token: the emulator listens on loopback and these exist for tests and demos.
"""

import json
from collections.abc import Callable
from typing import Final

from circlecost_emulator.clock import EmulatorClock
from circlecost_emulator.faults import Faults
from circlecost_emulator.messages import HttpRequest, Response, error_response, json_response
from circlecost_emulator.request_log import RequestLog
from circlecost_emulator.window import parse_rfc3339, rfc3339

ADMIN_PREFIX: Final = "/_emulator/"
_CLOCK_FIELDS: Final = frozenset({"advance_seconds", "now", "frozen"})


def _json_object(body: bytes) -> dict[str, object]:
    try:
        payload = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"the body is not JSON: {err}") from err
    if not isinstance(payload, dict):
        raise ValueError("the body must be a JSON object")
    return payload


class AdminApi:
    def __init__(self, clock: EmulatorClock, faults: Faults, log: RequestLog) -> None:
        self.clock = clock
        self.faults = faults
        self.log = log
        self._routes: dict[tuple[str, str], Callable[[HttpRequest], Response]] = {
            ("GET", "clock"): self._get_clock,
            ("POST", "clock"): self._set_clock,
            ("GET", "faults"): self._get_faults,
            ("POST", "faults"): self._set_faults,
            ("DELETE", "faults"): self._clear_faults,
            ("GET", "requests"): self._get_requests,
        }

    def handle(self, request: HttpRequest) -> Response:
        name = request.path[len(ADMIN_PREFIX) :].strip("/")
        handler = self._routes.get((request.method, name))
        if handler is None:
            known = any(route_name == name for _, route_name in self._routes)
            return error_response(405 if known else 404, f"no {request.method} {request.path}")
        try:
            return handler(request)
        except ValueError as err:
            return error_response(400, str(err))

    def _get_clock(self, _: HttpRequest) -> Response:
        return json_response(200, {"now": rfc3339(self.clock.now()), "frozen": self.clock.frozen})

    def _set_clock(self, request: HttpRequest) -> Response:
        """`{"now": iso}` jumps, `{"advance_seconds": n}` steps, `{"frozen": bool}` (un)freezes."""
        payload = _json_object(request.body)
        if not payload or set(payload) - _CLOCK_FIELDS:
            raise ValueError(f"give one or more of {sorted(_CLOCK_FIELDS)}")
        frozen = payload.get("frozen")
        if frozen is not None and not isinstance(frozen, bool):
            raise ValueError("frozen must be true or false")
        if "now" in payload:
            self.clock.set(parse_rfc3339("now", payload["now"]), frozen=frozen)
        elif frozen is True:
            self.clock.freeze()
        elif frozen is False:
            self.clock.unfreeze()
        if "advance_seconds" in payload:
            step = payload["advance_seconds"]
            if not isinstance(step, int | float) or isinstance(step, bool):
                raise ValueError("advance_seconds must be a number")
            self.clock.advance(step)
        return self._get_clock(request)

    def _get_faults(self, _: HttpRequest) -> Response:
        return json_response(200, self.faults.snapshot())

    def _set_faults(self, request: HttpRequest) -> Response:
        self.faults.update(_json_object(request.body))
        return json_response(200, self.faults.snapshot())

    def _clear_faults(self, _: HttpRequest) -> Response:
        self.faults.clear()
        return json_response(200, self.faults.snapshot())

    def _get_requests(self, request: HttpRequest) -> Response:
        """The request log, filtered by `org_id`, `method` and `kind` query parameters."""
        query = {k: v[-1] for k, v in request.query.items() if k in ("org_id", "method", "kind")}
        records = self.log.records(
            org_id=query.get("org_id"), method=query.get("method"), kind=query.get("kind")
        )
        return json_response(200, {"requests": [r.as_dict() for r in records]})
