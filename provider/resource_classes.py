"""CircleCI's cloud resource classes: size and credit rate, and the right-sizing rule.

Source: CircleCI's resource-class pricing page (circleci.com/product/features/resource-classes/)
and the configuration reference's resource_class tables, as recorded on 2026-12-06. CircleCI
changes them now and then: check there before relying on a figure. Self-hosted runner classes
(`<namespace>/<name>`) cost no compute credits and have no size here.

A family is the classes one job can move between by changing only `resource_class`: same
executor, operating system and CPU architecture, smallest first.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final


@dataclass(frozen=True)
class ResourceClass:
    name: str
    vcpus: Decimal
    ram_gb: Decimal
    credits_per_minute: int


def _family(*classes: tuple[str, str, str, int]) -> tuple[ResourceClass, ...]:
    return tuple(
        ResourceClass(name, Decimal(vcpus), Decimal(ram), rate)
        for name, vcpus, ram, rate in classes
    )


# (executors the export names, family smallest first)
FAMILIES: Final[tuple[tuple[frozenset[str], tuple[ResourceClass, ...]], ...]] = (
    (
        frozenset({"docker"}),
        _family(
            ("small", "1", "2", 5),
            ("medium", "2", "4", 10),
            ("medium+", "3", "6", 15),
            ("large", "4", "8", 20),
            ("xlarge", "8", "16", 40),
            ("2xlarge", "16", "32", 80),
            ("2xlarge+", "20", "40", 100),
        ),
    ),
    (
        frozenset({"docker"}),
        _family(
            ("arm.medium", "2", "8", 13),
            ("arm.large", "4", "16", 26),
            ("arm.xlarge", "8", "32", 52),
            ("arm.2xlarge", "16", "64", 104),
        ),
    ),
    (
        frozenset({"machine"}),
        _family(
            ("medium", "2", "7.5", 10),
            ("large", "4", "15", 20),
            ("xlarge", "8", "32", 40),
            ("2xlarge", "16", "64", 80),
        ),
    ),
    (
        frozenset({"machine"}),
        _family(
            ("arm.medium", "2", "8", 10),
            ("arm.large", "4", "16", 20),
            ("arm.xlarge", "8", "32", 40),
            ("arm.2xlarge", "16", "64", 80),
        ),
    ),
    (
        frozenset({"machine", "windows"}),
        _family(
            ("windows.medium", "4", "15", 40),
            ("windows.large", "8", "30", 120),
            ("windows.xlarge", "16", "60", 210),
            ("windows.2xlarge", "32", "128", 500),
        ),
    ),
    (
        frozenset({"machine", "macos"}),
        _family(
            ("macos.m1.medium.gen1", "4", "6", 150),
            ("macos.m1.large.gen1", "8", "12", 250),
        ),
    ),
    (
        frozenset({"machine", "macos"}),
        _family(
            ("m4pro.medium", "6", "28", 200),
            ("m4pro.large", "12", "56", 400),
        ),
    ),
)

# The rule. A job is over-provisioned when the median of its runs' median CPU and RAM
# utilisation are both under this percentage (CircleCI's own resource-class insight uses a
# similar line).
OVERPROVISIONED_BELOW_PCT: Final = Decimal(40)
# The next smaller class fits when the highest CPU and RAM the job reached, moved onto the
# smaller class's size, stay at or under this percentage: a 20 % margin for spikes that the
# per-run maximum misses and for growth.
FITS_AT_MOST_PCT: Final = Decimal(80)


@dataclass(frozen=True)
class Suggestion:
    """What right-sizing says about one job's class: a smaller class and the share of its
    compute credits it would save, or no class and why not."""

    smaller: ResourceClass | None
    saving_share: Decimal  # 0 when there is no suggestion
    reason: str


def family_of(executor: str | None, class_name: str | None) -> tuple[ResourceClass, ...] | None:
    for executors, family in FAMILIES:
        if (executor or "").lower() in executors and any(c.name == class_name for c in family):
            return family
    return None


def suggest(
    executor: str | None,
    class_name: str | None,
    median_cpu: Decimal | None,
    max_cpu: Decimal | None,
    median_ram: Decimal | None,
    max_ram: Decimal | None,
) -> Suggestion:
    """The next smaller class of the same family, when the job is over-provisioned and its
    observed peaks fit that class with the margin; otherwise the reason there is none."""
    family = family_of(executor, class_name)
    if family is None:
        return Suggestion(None, Decimal(0), "no size known for this class")
    if median_cpu is None or max_cpu is None or median_ram is None or max_ram is None:
        return Suggestion(None, Decimal(0), "no utilisation data")
    if median_cpu >= OVERPROVISIONED_BELOW_PCT or median_ram >= OVERPROVISIONED_BELOW_PCT:
        return Suggestion(None, Decimal(0), "sized right")
    index = [c.name for c in family].index(class_name or "")
    if index == 0:
        return Suggestion(None, Decimal(0), "smallest class of its kind")
    current, smaller = family[index], family[index - 1]
    peak_cpu = max_cpu * current.vcpus / smaller.vcpus
    peak_ram = max_ram * current.ram_gb / smaller.ram_gb
    if peak_cpu > FITS_AT_MOST_PCT or peak_ram > FITS_AT_MOST_PCT:
        return Suggestion(
            None,
            Decimal(0),
            f"peaks too high for {smaller.name} (CPU {peak_cpu:.0f}%, RAM {peak_ram:.0f}%)",
        )
    share = 1 - Decimal(smaller.credits_per_minute) / Decimal(current.credits_per_minute)
    return Suggestion(
        smaller,
        share,
        f"over-provisioned; peaks on {smaller.name}: CPU {peak_cpu:.0f}%, RAM {peak_ram:.0f}%",
    )
