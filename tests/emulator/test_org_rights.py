"""Rights per organization: an organization's admin-bot token is good for that organization only,
while the generic `admin` token is admin of every organization the emulator serves."""

from collections.abc import Iterator

import httpx
import pytest

from circlecost_emulator import Emulator

from .helpers import NOW, OCTOBER, create_job, org_admin_client, poll

NOT_ADMIN = (403, 404)  # circleci-api.md: CircleCI may send either; treat them the same


@pytest.fixture
def orgs(emulator: Emulator) -> tuple[str, str]:
    """The ids of the two demo organizations, A and B."""
    first, second = (org["id"] for org in emulator.organizations)
    return first, second


@pytest.fixture
def bot_a(emulator: Emulator, orgs: tuple[str, str]) -> Iterator[httpx.Client]:
    with org_admin_client(emulator, orgs[0]) as client:
        yield client


def test_an_org_admin_token_exports_its_own_org_only(
    bot_a: httpx.Client, orgs: tuple[str, str]
) -> None:
    own, other = orgs
    created = bot_a.post(f"/organizations/{own}/usage_export_job", json=OCTOBER)
    assert created.status_code == 201, created.text
    refused = bot_a.post(f"/organizations/{other}/usage_export_job", json=OCTOBER)
    assert refused.status_code in NOT_ADMIN
    assert set(refused.json()) == {"message"}


def test_each_org_admin_token_is_refused_by_every_other_org(emulator: Emulator) -> None:
    ids = [org["id"] for org in emulator.organizations]
    for token_org in ids:
        with org_admin_client(emulator, token_org) as client:
            for org_id in ids:
                status = client.post(
                    f"/organizations/{org_id}/usage_export_job", json=OCTOBER
                ).status_code
                assert (status == 201) if org_id == token_org else (status in NOT_ADMIN), (
                    token_org,
                    org_id,
                    status,
                )


def test_a_wrong_org_token_cannot_poll_through_the_other_org(
    emulator: Emulator, bot_a: httpx.Client, orgs: tuple[str, str]
) -> None:
    own, other = orgs
    job_id = create_job(bot_a, own, OCTOBER)
    assert poll(bot_a, own, job_id).status_code == 200
    assert poll(bot_a, other, job_id).status_code in NOT_ADMIN
    with org_admin_client(emulator, other) as bot_b:
        # B's own admin cannot read A's job either: jobs stay with their organization.
        assert poll(bot_b, other, job_id).status_code == 404
        assert poll(bot_b, own, job_id).status_code in NOT_ADMIN


def test_the_admin_check_comes_before_the_body(bot_a: httpx.Client, orgs: tuple[str, str]) -> None:
    own, other = orgs
    bad = {"start": "2026-10-01T00:00:00Z"}  # no end: 400 for an admin
    assert bot_a.post(f"/organizations/{own}/usage_export_job", json=bad).status_code == 400
    assert bot_a.post(f"/organizations/{other}/usage_export_job", json=bad).status_code in NOT_ADMIN


def test_an_org_admin_bot_collaborates_with_its_own_org_only(
    emulator: Emulator, bot_a: httpx.Client, orgs: tuple[str, str]
) -> None:
    body = bot_a.get("/me/collaborations").json()
    own = emulator.organizations[0]
    assert [(c["id"], c["name"], c["slug"]) for c in body] == [
        (own["id"], own["name"], own["slug"])
    ]
    assert all(c["vcs-type"] == "github" for c in body)
    assert orgs[1] not in {c["id"] for c in body}


def test_an_org_admin_bot_is_its_own_user(emulator: Emulator, bot_a: httpx.Client) -> None:
    me = bot_a.get("/me").json()
    assert me["login"] == f"{emulator.organizations[0]['name']}-cost-bot"
    with org_admin_client(emulator, emulator.organizations[1]["id"]) as bot_b:
        assert bot_b.get("/me").json()["id"] != me["id"]


def test_the_generic_admin_token_is_admin_of_every_org(
    emulator: Emulator, client: httpx.Client
) -> None:
    for org in emulator.organizations:
        response = client.post(f"/organizations/{org['id']}/usage_export_job", json=OCTOBER)
        assert response.status_code == 201, (org["name"], response.text)
    listed = [c["id"] for c in client.get("/me/collaborations").json()]
    assert listed == [org["id"] for org in emulator.organizations]


def test_given_org_admin_tokens_are_matched_to_their_org_whatever_the_case() -> None:
    org_id = "0b0e5f5e-1d0b-4c53-9e8e-7d2a40f3b1aa"
    emulator = Emulator(
        organizations=[{"id": org_id, "name": "hooli"}, "initrode"],
        org_admin_tokens={org_id.upper(): "CCIPAT_hooli_bot"},
    )
    assert emulator.org_admin_tokens[org_id] == "CCIPAT_hooli_bot"
    assert org_id.upper() not in emulator.org_admin_tokens
    emulator.clock.freeze(NOW)
    with emulator:
        with org_admin_client(emulator, org_id) as hooli_bot:
            listed = [c["id"] for c in hooli_bot.get("/me/collaborations").json()]
            initrode = emulator.organizations[1]["id"]
            mine = hooli_bot.post(f"/organizations/{org_id}/usage_export_job", json=OCTOBER)
            theirs = hooli_bot.post(f"/organizations/{initrode}/usage_export_job", json=OCTOBER)
    assert listed == [org_id]
    assert mine.status_code == 201, mine.text
    assert theirs.status_code in NOT_ADMIN
