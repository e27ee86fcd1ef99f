"""The policy pack's rules, called directly with hand-built values."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from circlecost.policies import rules
from circlecost.vocabulary import token_fingerprint
from tests.clock import calendar_edges

TODAY = date(2026, 11, 25)
TOKEN = "CCIPAT_policy_secret_5c1e0f"
OTHER = "CCIPAT_other_secret_9a8b7c"


def no_token_in(messages: list[str]) -> None:
    for message in messages:
        assert TOKEN not in message
        assert OTHER not in message


def test_dedicated_token_passes_when_every_integration_has_its_own_token() -> None:
    uses = [rules.TokenUse("acme", TOKEN), rules.TokenUse("globex", OTHER)]
    assert rules.shared_tokens(uses) == []


def test_dedicated_token_names_both_resources_and_never_the_token() -> None:
    uses = [rules.TokenUse("acme", TOKEN), rules.TokenUse("globex", TOKEN)]
    messages = rules.shared_tokens(uses)
    assert len(messages) == 1
    assert "'acme'" in messages[0]
    assert "'globex'" in messages[0]
    assert token_fingerprint(TOKEN) in messages[0]
    no_token_in(messages)


@pytest.mark.parametrize(
    "order",
    [("acme", "globex", "initech"), ("initech", "globex", "acme"), ("globex", "initech", "acme")],
)
def test_dedicated_token_lists_sharing_integrations_in_sorted_order_whatever_the_registration_order(
    order: tuple[str, ...],
) -> None:
    uses = [rules.TokenUse(name, TOKEN) for name in order] + [
        rules.TokenUse("zeta", OTHER),
        rules.TokenUse("beta", OTHER),
    ]
    messages = rules.shared_tokens(uses)
    assert [message.split(" use the same")[0] for message in messages] == [
        "Integrations 'acme', 'globex' and 'initech'",
        "Integrations 'beta' and 'zeta'",
    ]


def test_dedicated_token_skips_unknown_tokens() -> None:
    assert rules.shared_tokens([rules.TokenUse("a", ""), rules.TokenUse("b", "")]) == []


@pytest.mark.parametrize(
    ("expires_on", "max_days", "expected"),
    [
        ("2027-01-10", 90, None),
        ("2026-11-25", 90, None),
        ("2027-02-23", 90, None),  # exactly 90 days ahead
        (None, 90, "has no tokenExpiresOn"),
        ("", 90, "has no tokenExpiresOn"),
        ("2026-11-24", 90, "expired on 2026-11-24"),
        ("2027-02-24", 90, "more than 90 days ahead"),
        ("2027-06-01", 365, None),  # config override
        ("2027-06-01", 30, "more than 30 days ahead"),
        ("next week", 90, "is not a YYYY-MM-DD date"),
    ],
)
def test_token_rotation_table(expires_on: str | None, max_days: int, expected: str | None) -> None:
    messages = rules.token_rotation("acme", expires_on, TODAY, max_days)
    if expected is None:
        assert messages == []
    else:
        assert len(messages) == 1
        assert expected in messages[0]
        assert "'acme'" in messages[0]


def test_token_rotation_messages_say_what_to_do() -> None:
    (message,) = rules.token_rotation("acme", "2026-01-01", TODAY, 90)
    assert "pulumi config set --secret" in message
    assert "pulumi up" in message


@pytest.mark.parametrize(
    ("expires_on", "warn_days", "warns"),
    [
        ("2026-12-01", 14, True),
        ("2026-12-09", 14, True),
        ("2026-12-10", 14, False),
        ("2026-12-01", 3, False),
        (None, 14, False),
        ("2026-01-01", 14, False),
    ],
)
def test_token_expiry_warning_table(expires_on: str | None, warn_days: int, warns: bool) -> None:
    messages = rules.token_expiry_soon("acme", expires_on, TODAY, warn_days)
    assert bool(messages) is warns


def test_owner_role_accepts_owners() -> None:
    for role in ("Organization Owner", "Integration Owner"):
        assert rules.owner_role("ana", {"ana": [role]}.get).messages == []


def test_owner_role_accepts_the_first_actor_of_a_new_store() -> None:
    assert rules.owner_role("ana", lambda _who: None).messages == []


def test_owner_role_refuses_an_editor_and_says_how_to_get_the_role() -> None:
    verdict = rules.owner_role("bob", lambda _who: ["Editor"])
    assert len(verdict.messages) == 1
    assert "Editor" in verdict.messages[0]
    assert "circlecost access grant bob" in verdict.messages[0]


def test_owner_role_refuses_an_unknown_actor_and_a_missing_actor() -> None:
    assert rules.owner_role("eve", lambda _who: []).messages
    (missing,) = rules.owner_role(None, lambda _who: ["Organization Owner"]).messages
    assert "circlecost:actor" in missing


def test_owner_role_fails_closed_when_the_store_cannot_be_read() -> None:
    def unreadable(_who: str) -> list[str]:
        raise OSError("permission denied")

    verdict = rules.owner_role("ana", unreadable)
    assert verdict.store_unreadable
    assert "could not be read" in verdict.messages[0]


@pytest.mark.parametrize(
    ("price", "schedule", "count"),
    [
        ("0.0006", [], 0),
        ("0.01", [], 0),
        ("0.6", [], 1),
        ("0", [], 1),
        ("-1", [], 1),
        ("0.0006", [{"effective_from": "2027-01-01", "price_per_credit": "0.5"}], 1),
        ("0.6", [{"effective_from": "2027-01-01", "price_per_credit": "6"}], 2),
        (None, [], 0),
    ],
)
def test_price_sanity_table(price: str | None, schedule: list[dict[str, str]], count: int) -> None:
    assert len(rules.price_sanity("acme", price, schedule)) == count


def test_price_sanity_explains_the_list_price() -> None:
    (message,) = rules.price_sanity("acme", "0.6", [])
    assert "1,000× the list price" in message
    assert "0.0006" in message


@pytest.mark.parametrize("now", calendar_edges())
@pytest.mark.parametrize(
    ("days_ahead", "mandatory", "advisory"),
    [
        (-1, "expired on", None),
        (0, None, "in 0 day(s)"),
        (14, None, "in 14 day(s)"),
        (15, None, None),
        (90, None, None),
        (91, "more than 90 days ahead", None),
    ],
)
def test_token_expiry_counts_calendar_days_on_every_calendar_edge(
    now: datetime, days_ahead: int, mandatory: str | None, advisory: str | None
) -> None:
    today = now.date()
    expires_on = (today + timedelta(days=days_ahead)).isoformat()
    rotation = rules.token_rotation("acme", expires_on, today, 90)
    soon = rules.token_expiry_soon("acme", expires_on, today, 14)
    for messages, wanted in ((rotation, mandatory), (soon, advisory)):
        if wanted is None:
            assert messages == []
        else:
            (message,) = messages
            assert wanted in message
