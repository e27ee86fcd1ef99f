"""Typed inputs of circlecost's resources, shared by the Pulumi provider, the CLI and tests.

Validators raise ValueError with a message that names the bad value and says how to fix it;
`field_errors` turns a pydantic ValidationError into (field, message) pairs for Pulumi's
CheckFailure and the CLI.

Naming: inputs are camelCase on the wire (stack config entries, Pulumi state, what policies
see), as everywhere in Pulumi's ecosystem, and snake_case in Python (attributes, keyword
arguments). One alias generator makes the camelCase names; a model validates either spelling,
so state and stack config written before the rename still load, and an error names the key
the user wrote. `camel_case_names` rewrites the old spellings.
"""

from __future__ import annotations

import difflib
import re
import typing
import uuid
from datetime import date
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
)
from pydantic.alias_generators import to_camel, to_snake

from circlecost.vocabulary import TAG_COLUMNS, TAG_KEY_PATTERN
from circlecost.vql import (
    COST_FIELDS,
    AnyVirtualTag,
    VirtualColumns,
    VQLError,
    compile_filter,
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


# Every input model: typos are refused, values are immutable and never echoed in errors (a
# token may be among them), and each field answers to its camelCase alias and its Python name.
INPUTS_CONFIG = ConfigDict(
    extra="forbid",
    frozen=True,
    hide_input_in_errors=True,
    alias_generator=to_camel,
    # pydantic 2.11 renamed this validate_by_name; the spelling that 2.10 (our floor) knows.
    populate_by_name=True,
)


class DatedPrice(BaseModel):
    model_config = INPUTS_CONFIG

    effective_from: IsoDate
    price_per_credit: UsdPerCredit


class IntegrationSpec(BaseModel):
    """What a platform team declares for one CircleCI organization, apart from its token (the
    reference stack checks a stack config entry with it before the token is known)."""

    model_config = INPUTS_CONFIG

    organization_id: OrgId
    description: str = Field(default="", max_length=1000)
    price_per_credit: UsdPerCredit = LIST_PRICE
    price_schedule: tuple[DatedPrice, ...] = ()
    token_expires_on: IsoDate | None = None
    backfill_months: int = Field(default=3, ge=0, le=12)
    adopt: bool = False


class IntegrationInputs(IntegrationSpec):
    """An Integration resource's inputs: the declaration and the token."""

    token: CircleCIToken


class WorkspaceInputs(BaseModel):
    model_config = INPUTS_CONFIG

    name: Name
    description: str = Field(default="", max_length=1000)


class BindingInputs(BaseModel):
    model_config = INPUTS_CONFIG

    workspace_id: Name
    integration_id: Name


# What a cost matching no rule of a virtual tag without a default value shows as.
UNTAGGED = "(untagged)"
MAX_TAG_RULES = 200


def _tag_key(value: Any) -> str:
    text = str(value).strip()
    if not re.fullmatch(TAG_KEY_PATTERN, text):
        raise ValueError(
            f"{text!r} is not a virtual tag key: use lowercase letters, digits and _ "
            "(starting with a letter, at most 63), e.g. team or cost_centre"
        )
    return text


def _tag_value(value: Any) -> str:
    text = str(value).strip()
    if not text or len(text) > 200:
        raise ValueError(f"{text!r} is not a tag value: give 1 to 200 characters, e.g. payments")
    if text == UNTAGGED:
        raise ValueError(f"{UNTAGGED} is what untagged costs show as; choose another value")
    return text


def _vql(text: str, virtual: VirtualColumns | None = None) -> str:
    """`text` once it compiles (with `virtual`'s tags), else the filter error as a ValueError."""
    try:
        compile_filter(text, virtual)
    except VQLError as error:
        raise ValueError(error.message) from None
    return text


def _tag_filter(value: Any) -> str:
    return _vql(str(value))  # a rule names no virtual tag: tags are not made of tags


TagKey = Annotated[str, BeforeValidator(_tag_key)]
TagValue = Annotated[str, BeforeValidator(_tag_value)]
TagFilter = Annotated[str, BeforeValidator(_tag_filter)]


class TagRule(BaseModel):
    """Costs matching `filter` (VQL, as in `report --filter`) get `value`."""

    model_config = INPUTS_CONFIG

    value: TagValue
    filter: TagFilter


class VirtualTagInputs(BaseModel):
    """A virtual tag: rules in order, the first whose filter matches a cost gives its value."""

    model_config = INPUTS_CONFIG

    key: TagKey
    rules: tuple[TagRule, ...] = Field(min_length=1, max_length=MAX_TAG_RULES)
    default_value: TagValue | None = None
    description: str = Field(default="", max_length=1000)


BUDGET_PERIODS = ("month",)
MAX_BUDGET_USD = Decimal("1000000000")


def _amount(value: Any) -> Decimal:
    try:
        amount = Decimal(str(value).strip())
    except ArithmeticError:
        raise ValueError(f"{value!r} is not an amount of USD, e.g. 500 or 1250.50") from None
    if not amount.is_finite() or amount <= 0 or amount > MAX_BUDGET_USD:
        raise ValueError(f"{value} is not a budget: give an amount of USD above 0, e.g. 500")
    if amount != round(amount, 2):
        raise ValueError(f"{value} has more than two decimals: budgets are whole cents")
    return amount


def _thresholds(value: Any) -> tuple[Decimal, ...]:
    if not isinstance(value, list | tuple) or not value:
        raise ValueError("give a list of fractions of the amount, e.g. [0.8, 1.0]")
    fractions = []
    for item in value:
        try:
            fraction = Decimal(str(item).strip())
        except ArithmeticError:
            raise ValueError(f"{item!r} is not a fraction of the amount, e.g. 0.8") from None
        if not fraction.is_finite() or not Decimal("0.01") <= fraction <= Decimal(10):
            raise ValueError(f"{item} is not a threshold: give a fraction from 0.01 to 10")
        fractions.append(fraction.normalize())
    if len(set(fractions)) < len(fractions):
        raise ValueError("a threshold is repeated: give each once")
    return tuple(sorted(fractions))


def _period(value: Any) -> str:
    text = str(value).strip()
    if text not in BUDGET_PERIODS:
        raise ValueError(f"{text!r} is not a budget period: use {', '.join(BUDGET_PERIODS)}")
    return text


def _optional_filter(value: Any) -> str | None:
    """A VQL filter that may name virtual tags (which the store checks when it is used)."""
    if value is None or not str(value).strip():
        return None
    return _vql(str(value), AnyVirtualTag())


def _webhook_url(value: Any) -> SecretStr:
    secret = value if isinstance(value, SecretStr) else SecretStr(str(value))
    parts = urlsplit(secret.get_secret_value().strip())
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("is not a webhook URL: give https://… (a Slack incoming webhook, say)")
    if parts.scheme == "http" and not loopback:
        raise ValueError("must be https (http only reaches a receiver on this machine)")
    return secret


def _group_by(value: Any) -> str:
    text = str(value).strip()
    known = [name.removeprefix("costs.") for name in COST_FIELDS]
    known += [f"tag:{key}" for key in TAG_COLUMNS]
    if text not in known and not re.fullmatch(f"vtag:{TAG_KEY_PATTERN}", text):
        raise ValueError(f"{text!r} is not a dimension: use one of {', '.join(known)}, vtag:<key>")
    return text


UsdAmount = Annotated[Decimal, BeforeValidator(_amount)]
Dimension = Annotated[str, BeforeValidator(_group_by)]
Thresholds = Annotated[tuple[Decimal, ...], BeforeValidator(_thresholds)]
BudgetPeriod = Annotated[str, BeforeValidator(_period)]
OptionalFilter = Annotated[str | None, BeforeValidator(_optional_filter)]
WebhookUrl = Annotated[SecretStr, BeforeValidator(_webhook_url)]


class BudgetInputs(BaseModel):
    """A spending limit per period for a workspace's costs (all costs without one), with the
    fractions of it that make a budget warn, and the alert channels that hear of it."""

    model_config = INPUTS_CONFIG

    name: Name
    amount_usd: UsdAmount
    workspace_id: str | None = None
    period: BudgetPeriod = "month"
    thresholds: Thresholds = (Decimal("0.8"), Decimal("1"))
    filter: OptionalFilter = None
    alert_channel_ids: tuple[str, ...] = ()


class AlertChannelInputs(BaseModel):
    """A webhook that hears of budget crossings (of the budgets that name it) and, with
    `anomalies`, of cost anomalies; the body is Slack-compatible JSON: {"text": ...}."""

    model_config = INPUTS_CONFIG

    name: Name
    url: WebhookUrl
    anomalies: bool = False
    anomaly_group_by: Dimension = "account"


INPUT_MODELS: tuple[type[BaseModel], ...] = (
    IntegrationInputs,
    WorkspaceInputs,
    BindingInputs,
    VirtualTagInputs,
    BudgetInputs,
    AlertChannelInputs,
)


def nested_model(model: type[BaseModel], field: str) -> type[BaseModel] | None:
    """The model of a field's items (`price_schedule` holds DatedPrice entries), if any."""
    pending: list[Any] = [model.model_fields[field].annotation]
    while pending:
        annotation = pending.pop()
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return annotation
        pending.extend(typing.get_args(annotation))
    return None


def renames(model: type[BaseModel]) -> dict[str, tuple[str, type[BaseModel] | None]]:
    """Each field's old (snake_case) and new (camelCase) spelling, the new one mapping to itself,
    with the model of its items."""
    table: dict[str, tuple[str, type[BaseModel] | None]] = {}
    for name, info in model.model_fields.items():
        alias = info.alias or name
        table[name] = table[alias] = (alias, nested_model(model, name))
    return table


def camel_case_names(
    values: dict[str, Any],
    model: type[BaseModel] = IntegrationInputs,
    *,
    renamed: list[tuple[str, str]] | None = None,
    path: str = "",
) -> dict[str, Any]:
    """`values` with every snake_case input name of `model` (and of its nested entries) written
    in camelCase. An old name stays as it is when its new spelling is also present, so that
    validation refuses the pair instead of one silently winning. Other keys stay too.

    Each rename is appended to `renamed` as (path of the old key, new key), for a warning.
    """
    table = renames(model)
    result: dict[str, Any] = {}
    for key, value in values.items():
        new, items = table.get(key, (key, None))
        if new != key and new in values:
            new = key
        if new != key and renamed is not None:
            renamed.append((f"{path}{key}", new))
        if items is not None and isinstance(value, list | tuple):
            value = [
                camel_case_names(item, items, renamed=renamed, path=f"{path}{key}[{index}].")
                if isinstance(item, dict)
                else item
                for index, item in enumerate(value)
            ]
        result[new] = value
    return result


def camel_case_inputs(props: dict[str, Any]) -> dict[str, Any]:
    """Any resource's inputs with the old spellings renamed: the names of all input models."""
    for model in INPUT_MODELS:
        props = camel_case_names(props, model)
    return props


FIELD_HINTS = {
    "backfill_months": "a whole number of months from 0 to 12 (default 3)",
    "description": "a label of at most 1000 characters",
    "adopt": "true or false",
    "anomalies": "true or false",
    "alert_channel_ids": "a list of AlertChannel ids",
    "rules": 'a list of {value, filter} rules, e.g. [{"value": "payments", '
    '"filter": "costs.account = \'payments-api\'"}]',
}


def input_names(model: type[BaseModel]) -> list[str]:
    """The camelCase input names of a model and of its nested entries, for suggestions."""
    names = []
    for name, info in model.model_fields.items():
        names.append(info.alias or name)
        items = nested_model(model, name)
        if items is not None:
            names.extend(input_names(items))
    return sorted(set(names))


def location(parts: tuple[int | str, ...]) -> str:
    """A pydantic error location as a property path: priceSchedule[0].effectiveFrom."""
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path or "(inputs)"


def unknown_name_message(name: str, known: list[str]) -> str:
    """Why `name` is refused, with the closest known name."""
    spelled = to_camel(name)
    if spelled != name and spelled in known:
        return f"is the old spelling of {spelled}, which is also set: keep only {spelled}"
    close = difflib.get_close_matches(name, known, n=1)
    suggestion = f"; did you mean {close[0]}?" if close else ""
    return (
        f"is not an input of this resource{suggestion} (inputs are camelCase: {', '.join(known)})"
    )


def field_errors(
    error: ValidationError, model: type[BaseModel] | None = None
) -> list[tuple[str, str]]:
    """One (field, message) pair per problem, with a message a person can act on. The field is
    spelt as the input was (a snake_case name written before the rename stays snake_case), and
    an unknown name comes with the closest input name of `model` (of any model without it)."""
    models = (model,) if model is not None else INPUT_MODELS
    known = sorted({name for each in models for name in input_names(each)})
    pairs = []
    for item in error.errors():
        top = str(item["loc"][0]) if item["loc"] else ""
        if item["type"] == "extra_forbidden":
            message = unknown_name_message(str(item["loc"][-1]), known)
        elif item["type"] == "missing":
            message = "is required"
        elif item["type"] == "value_error":
            message = str(item["ctx"]["error"]) if "ctx" in item else item["msg"]
        else:
            hint = FIELD_HINTS.get(to_snake(top))
            message = f"{item['msg']}" + (f": expected {hint}" if hint else "")
        pairs.append((location(item["loc"]), message))
    return pairs
