"""A create that was cut off (the CLI killed mid-import) is asked for again by Pulumi: the same
stack with a token of the same fingerprint continues it; anyone else still has to adopt it."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from circlecost import service
from circlecost.errors import CirclecostError
from circlecost.settings import Settings
from circlecost_emulator import Emulator
from circlecost_emulator.request_log import USAGE_EXPORT_CREATE
from tests.service.test_integrations import inputs, served, stored
from tests.support import org_and_token

STACK = "organization/platform/prod"


def cut_off_create(emulator: Emulator, settings: Settings) -> str:
    """A create that recorded the integration and asked for its exports, then stopped."""
    org_id, token = org_and_token(emulator)
    emulator.faults.set(null_urls_polls=100)  # CircleCI keeps the exports "completed" without links
    integration_id, outputs = service.create_integration(
        replace(settings, create_timeout=timedelta(0)),
        inputs(org_id, token, backfill_months=2),
        stack=STACK,
    )
    assert outputs["status"] == "Importing"
    emulator.faults.clear()
    return integration_id


def test_the_same_stack_asking_again_continues_the_integration_with_the_same_jobs(
    emulator: Emulator, settings: Settings
) -> None:
    first = cut_off_create(emulator, settings)
    org_id, token = org_and_token(emulator)
    posts = emulator.requests.count(org_id=org_id, kind=USAGE_EXPORT_CREATE)

    again, outputs = service.create_integration(
        settings, inputs(org_id, token, backfill_months=2), stack=STACK
    )

    assert again == first
    assert outputs["status"] == "Stable"
    store = settings.store()
    assert stored(store, first) == served(emulator, store, first, org_id)
    assert emulator.requests.count(org_id=org_id, kind=USAGE_EXPORT_CREATE) == posts  # no new job
    actions = [entry.action for entry in store.list_audit(object_id=first)]
    assert actions == ["resume", "create"]  # newest first: both attempts are on record


@pytest.mark.parametrize(
    ("stack", "token_kind"),
    [
        ("organization/platform/staging", "same"),  # another stack
        (None, "same"),  # the CLI, which names no stack
        (STACK, "rotated"),  # the same stack with another token
    ],
)
def test_anyone_else_still_has_to_adopt_the_integration(
    emulator: Emulator, settings: Settings, stack: str | None, token_kind: str
) -> None:
    first = cut_off_create(emulator, settings)
    org_id, token = org_and_token(emulator)
    if token_kind == "rotated":
        token = emulator.tokens["admin"]

    with pytest.raises(CirclecostError, match="set adopt: true"):
        service.create_integration(settings, inputs(org_id, token), stack=stack)

    adopted, outputs = service.create_integration(
        settings, inputs(org_id, token, adopt=True), stack=stack
    )
    assert adopted == first
    assert outputs["status"] == "Stable"
