"""The controllable clock, from Python and through `/_emulator/clock`."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from circlecost_emulator import Emulator, EmulatorClock
from tests.clock import SUITE_NOW

from .helpers import NOW, OCTOBER


def test_a_frozen_clock_moves_only_when_told() -> None:
    clock = EmulatorClock()
    clock.freeze(NOW)
    assert clock.now() == NOW
    assert clock.advance(90) == NOW + timedelta(seconds=90)
    assert clock.frozen


def test_an_unfrozen_clock_ticks_from_where_it_was_set() -> None:
    clock = EmulatorClock()
    clock.set(NOW)
    assert not clock.frozen
    assert NOW <= clock.now() < NOW + timedelta(seconds=5)
    clock.advance(-3600)
    assert clock.now() < NOW


def test_the_clock_defaults_to_the_process_clock() -> None:
    # The suite's clock stands at SUITE_NOW (ticking): a new emulator clock reads it unmoved.
    assert abs(EmulatorClock().now() - SUITE_NOW) < timedelta(seconds=5)


def test_naive_times_are_taken_as_utc() -> None:
    clock = EmulatorClock()
    assert clock.freeze(datetime(2026, 1, 1)) == datetime(2026, 1, 1, tzinfo=UTC)


def test_the_clock_is_read_and_set_over_http(emulator: Emulator, http: httpx.Client) -> None:
    url = f"{emulator.root_url}/_emulator/clock"
    assert http.get(url).json() == {"now": "2026-11-05T12:00:00Z", "frozen": True}
    assert http.post(url, json={"advance_seconds": 3600}).json()["now"] == "2026-11-05T13:00:00Z"
    moved = http.post(url, json={"now": "2026-12-01T00:00:00+01:00"}).json()
    assert moved == {"now": "2026-11-30T23:00:00Z", "frozen": True}
    assert emulator.clock.now() == datetime(2026, 11, 30, 23, tzinfo=UTC)
    assert http.post(url, json={"frozen": False}).json()["frozen"] is False


@pytest.mark.parametrize(
    "body", [{}, {"advance_seconds": "soon"}, {"now": "tomorrow"}, {"tick": 1}, {"frozen": 1}]
)
def test_a_bad_clock_request_is_400(
    emulator: Emulator, body: dict[str, object], http: httpx.Client
) -> None:
    response = http.post(f"{emulator.root_url}/_emulator/clock", json=body)
    assert response.status_code == 400
    assert "message" in response.json()


def test_the_window_rules_follow_the_emulator_clock(
    emulator: Emulator, client: httpx.Client, org_id: str
) -> None:
    emulator.clock.freeze(datetime(2027, 10, 15, tzinfo=UTC))
    response = client.post(f"/organizations/{org_id}/usage_export_job", json=OCTOBER)
    assert response.status_code == 400
    assert "one year" in response.json()["message"]
    emulator.clock.freeze(datetime(2026, 10, 15, tzinfo=UTC))
    response = client.post(f"/organizations/{org_id}/usage_export_job", json=OCTOBER)
    assert "future" in response.json()["message"]


def test_the_date_header_follows_the_emulator_clock(client: httpx.Client) -> None:
    assert client.get("/me").headers["Date"] == "Thu, 05 Nov 2026 12:00:00 GMT"


def test_unknown_admin_endpoints_are_404(emulator: Emulator, http: httpx.Client) -> None:
    assert http.get(f"{emulator.root_url}/_emulator/nothing").status_code == 404
    assert http.put(f"{emulator.root_url}/_emulator/clock").status_code == 405
