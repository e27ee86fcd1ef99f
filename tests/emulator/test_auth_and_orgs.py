"""Tokens, identity and organization look-ups, over a real loopback socket."""

import httpx
import pytest

from circlecost_emulator import Emulator
from circlecost_emulator.state import OLD_TOKEN_MESSAGE

from .helpers import OCTOBER, api_client


def get_me(
    http: httpx.Client, emulator: Emulator, headers: dict[str, str], query: str = ""
) -> httpx.Response:
    return http.get(f"{emulator.base_url}/me{query}", headers=headers, timeout=10)


@pytest.mark.parametrize(
    ("kind", "status"),
    [("admin", 200), ("non_admin", 200), ("expired", 401), ("project", 401), ("old_format", 401)],
)
def test_each_token_kind_gets_its_documented_status(
    emulator: Emulator, kind: str, status: int, http: httpx.Client
) -> None:
    response = get_me(http, emulator, {"Circle-Token": emulator.tokens[kind]})
    assert response.status_code == status
    if status == 401:
        assert isinstance(response.json()["message"], str)


def test_an_old_format_token_gets_the_new_format_message(
    emulator: Emulator, http: httpx.Client
) -> None:
    response = get_me(http, emulator, {"Circle-Token": emulator.tokens["old_format"]})
    assert response.json() == {"message": OLD_TOKEN_MESSAGE}


def test_a_bearer_token_is_accepted_like_circle_token(
    emulator: Emulator, http: httpx.Client
) -> None:
    response = get_me(http, emulator, {"Authorization": f"Bearer {emulator.tokens['admin']}"})
    assert response.status_code == 200
    assert response.json()["login"] == "ada-admin"


@pytest.mark.parametrize("with_header", [False, True])
def test_the_circle_token_query_parameter_is_rejected(
    emulator: Emulator, with_header: bool, http: httpx.Client
) -> None:
    headers = {"Circle-Token": emulator.tokens["admin"]} if with_header else {}
    response = get_me(http, emulator, headers, f"?circle-token={emulator.tokens['admin']}")
    assert response.status_code == 401
    assert "query parameter" in response.json()["message"]


@pytest.mark.parametrize(
    "headers", [{}, {"Circle-Token": "CCIPAT_not_a_token"}, {"Authorization": "Basic eDp5"}]
)
def test_missing_or_unknown_tokens_get_401_json(
    emulator: Emulator, headers: dict[str, str], http: httpx.Client
) -> None:
    response = get_me(http, emulator, headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    assert set(response.json()) == {"message"}


def test_me_has_the_documented_fields(client: httpx.Client) -> None:
    body = client.get("/me").json()
    assert set(body) == {"id", "login", "name", "avatar_url"}


def test_collaborations_is_a_bare_array_with_vcs_type_hyphenated(
    emulator: Emulator, client: httpx.Client
) -> None:
    body = client.get("/me/collaborations").json()
    assert isinstance(body, list)
    assert [(c["id"], c["name"], c["slug"]) for c in body] == [
        (o["id"], o["name"], o["slug"]) for o in emulator.organizations
    ]
    assert all(c["vcs-type"] == "github" and "avatar_url" in c for c in body)


def test_the_non_admin_is_a_member_of_every_org_but_cannot_export(
    emulator: Emulator, org_id: str
) -> None:
    with api_client(emulator, "non_admin") as member:
        assert len(member.get("/me/collaborations").json()) == len(emulator.organizations)
        assert member.get(f"/organization/{org_id}").status_code == 200
        response = member.post(f"/organizations/{org_id}/usage_export_job", json=OCTOBER)
    assert response.status_code == 404
    assert set(response.json()) == {"message"}


@pytest.mark.parametrize("key", ["id", "slug"])
def test_an_organization_is_found_by_id_or_slug(
    emulator: Emulator, client: httpx.Client, key: str
) -> None:
    org = emulator.organizations[1]
    body = client.get(f"/organization/{org[key]}").json()
    assert body == {"id": org["id"], "name": org["name"], "slug": org["slug"], "vcs_type": "github"}


def test_an_unknown_organization_is_404(client: httpx.Client) -> None:
    response = client.get("/organization/gh/nobody")
    assert response.status_code == 404
    assert response.json() == {"message": "Organization does not exist."}


def test_unknown_paths_and_wrong_methods_answer_in_json(client: httpx.Client) -> None:
    assert client.get("/pipeline").status_code == 404
    for method in ("POST", "PUT", "DELETE", "OPTIONS"):
        response = client.request(method, "/me")
        assert response.status_code == 405
        assert "message" in response.json()


def test_tokens_are_random_per_instance_unless_given() -> None:
    first, second = Emulator(), Emulator()
    assert first.tokens["admin"] != second.tokens["admin"]
    assert first.tokens["admin"].startswith("CCIPAT_")
    fixed = Emulator(tokens={"admin": "CCIPAT_fixed"})
    assert fixed.tokens["admin"] == "CCIPAT_fixed"
    with pytest.raises(ValueError, match="unknown token kinds"):
        Emulator(tokens={"root": "x"})


def test_given_organizations_replace_the_demo_ones() -> None:
    emulator = Emulator(
        organizations=["initrode", {"id": "0b0e5f5e-1d0b-4c53-9e8e-7d2a40f3b1aa", "name": "hooli"}]
    )
    assert [o["name"] for o in emulator.organizations] == ["initrode", "hooli"]
    assert emulator.organizations[1]["id"] == "0b0e5f5e-1d0b-4c53-9e8e-7d2a40f3b1aa"
    assert emulator.organizations[0]["slug"] == "gh/initrode"
