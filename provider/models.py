"""Typed inputs of circlecost's resources, shared by the Pulumi provider, the CLI and tests.

Validators raise ValueError with a message that names the bad value and says how to fix it;
`field_errors` turns a pydantic ValidationError into (field, message) pairs for Pulumi's
CheckFailure and the CLI.
"""

from __future__ import annotations

import re
import uuid
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
)

LIST_PRICE = Decimal("0.0006")


def _org_id(value: Any) -> str:
    text = str(value).strip()
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a UUID — copy it from CircleCI Organization Settings → Overview"
        ) from None


def _price(value: Any) -> Decimal:
    try:
        price = Decimal(str(value))
    except ArithmeticError:
        raise ValueError(f"{value!r} is not a number of USD per credit, e.g. 0.0006") from None
    if not price.is_finite() or price <= 0:
        raise ValueError(
            f"{value} is not a price: USD per credit must be greater than 0 "
            "(CircleCI's list price is 0.0006)"
        )
    return price


def _iso_date(value: Any) -> date:
    if isinstance(value, date):
        return value
    text = str(value).strip()
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise ValueError(f"{text!r} is not a date: write it as YYYY-MM-DD, e.g. 2027-02-28")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a real calendar date (YYYY-MM-DD)") from None


def _token(value: Any) -> SecretStr:
    secret = value if isinstance(value, SecretStr) else SecretStr(str(value))
    text = secret.get_secret_value()
    if not text.strip():
        raise ValueError("is empty: set the CircleCI personal API token as secret config")
    if text != text.strip() or any(ch.isspace() for ch in text):
        raise ValueError("contains whitespace: paste the CircleCI token exactly, without spaces")
    return secret


OrgId = Annotated[str, BeforeValidator(_org_id)]
UsdPerCredit = Annotated[Decimal, BeforeValidator(_price)]
IsoDate = Annotated[date, BeforeValidator(_iso_date)]
CircleCIToken = Annotated[SecretStr, BeforeValidator(_token)]
Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(str.strip)]


class DatedPrice(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    effective_from: IsoDate
    price_per_credit: UsdPerCredit


class IntegrationInputs(BaseModel):
    """What a platform team declares for one CircleCI organization."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    token: CircleCIToken
    organization_id: OrgId
    description: str = Field(default="", max_length=1000)
    price_per_credit: UsdPerCredit = LIST_PRICE
    price_schedule: tuple[DatedPrice, ...] = ()
    token_expires_on: IsoDate | None = None
    backfill_months: int = Field(default=3, ge=0, le=12)
    adopt: bool = False


class WorkspaceInputs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    name: Name
    description: str = Field(default="", max_length=1000)


class BindingInputs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    workspace_id: Name
    integration_id: Name


FIELD_HINTS = {
    "backfill_months": "a whole number of months from 0 to 12 (default 3)",
    "description": "a label of at most 1000 characters",
    "adopt": "true or false",
}


def field_errors(error: ValidationError) -> list[tuple[str, str]]:
    """One (field, message) pair per problem, with a message a person can act on."""
    pairs = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or "(inputs)"
        top = str(item["loc"][0]) if item["loc"] else ""
        if item["type"] == "extra_forbidden":
            message = "is not an input of this resource: check the spelling (inputs are snake_case)"
        elif item["type"] == "missing":
            message = "is required"
        elif item["type"] == "value_error":
            message = str(item["ctx"]["error"]) if "ctx" in item else item["msg"]
        else:
            hint = FIELD_HINTS.get(top)
            message = f"{item['msg']}" + (f": expected {hint}" if hint else "")
        pairs.append((location, message))
    return pairs
