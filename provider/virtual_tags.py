"""Virtual tags in reports: each tag's rules compiled into one SQL expression over a cost.

`CASE WHEN <rule 1> THEN <value 1> WHEN <rule 2> ... ELSE <default or (untagged)> END`: the
rules are tried in order and the first match wins, so every cost has exactly one value of each
key, and a split by a virtual tag adds up to the report's total. Reports evaluate the rules on
every query (they read them on the report's own connection), which is why a rule change re-tags
every cost at once without touching the usage rows.
"""

from __future__ import annotations

import duckdb

from circlecost.errors import CirclecostError
from circlecost.models import UNTAGGED
from circlecost.store import VirtualTag, virtual_tags_in
from circlecost.vql import CompiledFilter, VirtualColumns, compile_filter

GROUP_PREFIX = "vtag:"  # --group-by vtag:<key>


def value_expression(tag: VirtualTag) -> CompiledFilter:
    """The SQL expression of `tag`'s value for one cost, with its parameters in order."""
    whens: list[str] = []
    params: list[str] = []
    for rule in tag.rules:
        condition = compile_filter(rule.filter)
        whens.append(f"WHEN {condition.sql} THEN ?")
        params += [*condition.params, rule.value]
    params.append(tag.default_value or UNTAGGED)
    return CompiledFilter(f"(CASE {' '.join(whens)} ELSE ? END)", tuple(params))


def virtual_columns(connection: duckdb.DuckDBPyConnection) -> VirtualColumns:
    """Every virtual tag of the store `connection` reads: key -> its value expression."""
    return {tag.key: value_expression(tag) for tag in virtual_tags_in(connection)}


def group_expression(name: str, virtual: VirtualColumns) -> CompiledFilter:
    """The expression of a `vtag:<key>` group-by, or an error naming the known keys."""
    key = name.removeprefix(GROUP_PREFIX)
    if key not in virtual:
        known = ", ".join(GROUP_PREFIX + each for each in virtual) or "none are defined yet"
        raise CirclecostError(
            f"--group-by: there is no virtual tag '{key}' in the store",
            hint=f"virtual tags: {known} (a VirtualTag resource or `circlecost vtags` adds one)",
        )
    return virtual[key]


def is_virtual(name: str) -> bool:
    return name.startswith(GROUP_PREFIX)
