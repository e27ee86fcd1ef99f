"""circlecost's policy rules as pure functions, so they can be unit-tested without Pulumi.

Each rule takes plain values (already extracted from the resource's inputs) and returns the
messages to report; an empty list means the rule passes. Messages name inputs as the stack
config spells them, in camelCase; dated prices are read in either spelling, since a state
written before the rename has snake_case names. No message ever contains a token:
tokens are compared through their fingerprints.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from circlecost.vocabulary import INTEGRATION_CHANGERS, token_fingerprint

MAX_SANE_PRICE = Decimal("0.01")
LIST_PRICE = Decimal("0.0006")


@dataclass(frozen=True)
class TokenUse:
    """One Integration's token, identified by the resource's name."""

    resource: str
    token: str


def shared_tokens(uses: Iterable[TokenUse]) -> list[str]:
    """circlecost-dedicated-token: no two integrations may share one CircleCI token.

    One message per shared token, naming its integrations in sorted order, and the messages
    sorted too: Pulumi registers resources in no fixed order, and a reviewer (or a test) must
    see the same text on every run.
    """
    users: dict[str, set[str]] = {}
    for use in uses:
        if use.token:
            users.setdefault(token_fingerprint(use.token), set()).add(use.resource)
    shared = sorted((sorted(names), key) for key, names in users.items() if len(names) > 1)
    return [
        f"Integrations {quoted_list(names)} use the same CircleCI token ({key}). Give each "
        "integration its own dedicated personal API token: create one in CircleCI (User "
        "Settings → Personal API Tokens), store it with `pulumi config set --secret`, then "
        "`pulumi up`."
        for names, key in shared
    ]


def quoted_list(names: list[str]) -> str:
    """'a' and 'b'; 'a', 'b' and 'c'."""
    quoted = [f"'{name}'" for name in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} and {quoted[-1]}"


ROTATE_HOWTO = (
    "Create a new personal API token in CircleCI with an expiry date, store it with "
    "`pulumi config set --secret <key> <token>`, set tokenExpiresOn to its expiry date, "
    "then run `pulumi up`."
)


def token_rotation(
    resource: str, expires_on: str | None, today: date, max_lifetime_days: int
) -> list[str]:
    """circlecost-token-rotation: the token has a known expiry, not past, not too far ahead."""
    if not expires_on:
        return [
            f"Integration '{resource}' has no tokenExpiresOn: set it to the expiry date the "
            f"CircleCI token was created with (at most {max_lifetime_days} days ahead). "
            + ROTATE_HOWTO
        ]
    expiry = parse_date(expires_on)
    if expiry is None:
        return [
            f"Integration '{resource}': tokenExpiresOn '{expires_on}' is not a YYYY-MM-DD date."
        ]
    if expiry < today:
        return [
            f"Integration '{resource}': its CircleCI token expired on {expiry}. " + ROTATE_HOWTO
        ]
    if (expiry - today).days > max_lifetime_days:
        return [
            f"Integration '{resource}': its CircleCI token expires on {expiry}, more than "
            f"{max_lifetime_days} days ahead (max_token_lifetime_days). Use a token that "
            f"expires sooner. " + ROTATE_HOWTO
        ]
    return []


def token_expiry_soon(
    resource: str, expires_on: str | None, today: date, warn_days: int
) -> list[str]:
    """circlecost-token-expiry-warning (advisory): the token expires within warn_days."""
    expiry = parse_date(expires_on) if expires_on else None
    if expiry is None or expiry < today:
        return []  # a missing or past expiry is the mandatory rule's business
    days_left = (expiry - today).days
    if days_left <= warn_days:
        return [
            f"Integration '{resource}': its CircleCI token expires on {expiry}, in {days_left} "
            f"day(s). Rotate it now. " + ROTATE_HOWTO
        ]
    return []


# Returns the actor's roles, or None when the store has no principals yet (a new store makes
# its first actor the Organization Owner, so nobody is refused there). Raises when unreadable.
RoleLookup = Callable[[str], list[str] | None]


@dataclass(frozen=True)
class RoleVerdict:
    messages: list[str]
    store_unreadable: bool = False


def owner_role(actor: str | None, roles_of: RoleLookup) -> RoleVerdict:
    """circlecost-owner-role: the acting person holds an owner role in the store's registry."""
    if not actor:
        return RoleVerdict(
            [
                "No actor is set for this stack: run `pulumi config set circlecost:actor <you>` "
                "(or set CIRCLECOST_ACTOR) so that changes are checked and audited."
            ]
        )
    try:
        roles = roles_of(actor)
    except Exception as err:  # the store could not be read: say so, never guess
        return RoleVerdict(
            [
                f"The circlecost store could not be read to check the role of '{actor}' ({err}). "
                "Make sure circlecost:store points at a readable store, or set this policy's "
                "config `unreadable_store` to `warn`."
            ],
            store_unreadable=True,
        )
    if roles is None or any(role in INTEGRATION_CHANGERS for role in roles):
        return RoleVerdict([])
    held = f"holds {', '.join(sorted(roles))}" if roles else "holds no role"
    return RoleVerdict(
        [
            f"'{actor}' {held} in the circlecost store, but only an Organization Owner or "
            "Integration Owner may change integrations. Ask an Organization Owner to run "
            f"`circlecost access grant {actor} 'Integration Owner'`."
        ]
    )


def price_sanity(resource: str, base_price: object, schedule: Iterable[object]) -> list[str]:
    """circlecost-price-sanity (advisory): USD per credit in (0, 0.01], dated prices included."""
    messages = []
    prices = [("pricePerCredit", base_price)]
    for index, entry in enumerate(schedule):
        if isinstance(entry, dict):
            prices.append(
                (
                    f"priceSchedule[{index}] ({either(entry, 'effectiveFrom', 'effective_from')})",
                    either(entry, "pricePerCredit", "price_per_credit"),
                )
            )
    for field, value in prices:
        if value is None:
            continue
        price = as_decimal(value)
        if price is None or price <= 0 or price > MAX_SANE_PRICE:
            ratio = (
                f" — {price / LIST_PRICE:,.0f}× the list price of $0.0006"
                if price and price > 0
                else ""
            )
            messages.append(
                f"Integration '{resource}': {field} is {value} USD per credit{ratio}. CircleCI's "
                "list price is $0.0006 per credit (25,000 credits for $15); did you mean 0.0006?"
            )
    return messages


def either(entry: dict[str, object], name: str, old_name: str) -> object:
    """An entry's value under its camelCase name, else under its old snake_case one."""
    return entry[name] if name in entry else entry.get(old_name)


def parse_date(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except (TypeError, ValueError):
        return None


def as_decimal(value: object) -> Decimal | None:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def budget_status(resource: str, props: dict[str, object]) -> list[str]:
    """A budget whose spending this month has reached one of its thresholds (its figures are
    the provider's, made for the preview from the costs in the store)."""
    status = props.get("status")
    if status not in ("warning", "over"):
        return []
    spent, forecast = as_decimal(props.get("spent_usd")), as_decimal(props.get("forecast_usd"))
    amount = as_decimal(props.get("amountUsd"))
    if spent is None or amount is None:
        return []
    share = spent / amount * 100 if amount else Decimal(0)
    forecast_text = f", forecast ${forecast:,.2f} by {props.get('period_end')}" if forecast else ""
    return [
        f"budget '{props.get('name') or resource}' is {status}: ${spent:,.2f} spent of "
        f"${amount:,.2f} ({share:.0f}%) this month as of {props.get('as_of')}{forecast_text}. "
        "Look at `circlecost report --period this_month` for where it goes"
    ]
