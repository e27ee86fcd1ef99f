"""Backfill and the daily refresh against the emulator, started on every calendar edge."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from circlecost import service
from circlecost.settings import Settings
from circlecost_emulator import Emulator
from tests.clock import calendar_edges
from tests.conftest import Travel
from tests.service.test_integrations import inputs, served, stored
from tests.support import org_and_token


@pytest.mark.parametrize("now", calendar_edges())
def test_backfill_then_next_days_refresh_import_exactly_what_circleci_serves(
    now: datetime, travel: Travel, emulator: Emulator, settings: Settings
) -> None:
    travel(now)
    emulator.clock.freeze(now)  # it followed the process clock; it moves only when told now
    settings = replace(settings, clock=emulator.clock.now)
    org_id, token = org_and_token(emulator)
    integration_id, outputs = service.create_integration(
        settings, inputs(org_id, token, backfill_months=2)
    )
    store = settings.store()
    assert outputs["status"] == "Stable"
    windows = [planned.window for planned in store.list_windows(integration_id)]
    assert len(windows) == 3  # two whole months and this one so far
    assert windows[-1].start.date() == now.date().replace(day=1)
    assert stored(store, integration_id) == served(emulator, store, integration_id, org_id)

    emulator.clock.advance(86_400)  # the next day, on both clocks
    refreshed = service.read_integration(settings, integration_id, token)
    assert refreshed is not None
    assert refreshed["status"] == "Stable"
    later = [planned.window for planned in store.list_windows(integration_id)]
    assert later[-1].end == now + timedelta(days=1) - timedelta(minutes=1)  # asked for
    assert all(planned.state == "loaded" for planned in store.list_windows(integration_id))
    assert stored(store, integration_id) == served(emulator, store, integration_id, org_id)
