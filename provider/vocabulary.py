"""The words circlecost, its store and its policy pack share, each defined once.

This module imports nothing else of circlecost, so that the policy pack can use it without
loading the provider.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Final

# The type token Pulumi gives circlecost's Integration resource (a dynamic resource named
# `circlecost:Integration`); the policy pack recognises integrations by it.
INTEGRATION_TYPE: Final = "pulumi-python:dynamic/circlecost:Integration"
BUDGET_TYPE: Final = "pulumi-python:dynamic/circlecost:Budget"


class Status(StrEnum):
    """An integration's import status, as the resource's `status` output and the store show it."""

    IMPORTING = "Importing"
    STABLE = "Stable"
    WARNING = "Warning"
    ERROR = "Error"


class Role(StrEnum):
    """What a principal may do in a store, strongest first."""

    ORGANIZATION_OWNER = "Organization Owner"
    INTEGRATION_OWNER = "Integration Owner"
    EDITOR = "Editor"
    VIEWER = "Viewer"


# Who may create, change or delete an Integration (the provider checks, the policy pack warns).
INTEGRATION_CHANGERS: Final = (Role.ORGANIZATION_OWNER, Role.INTEGRATION_OWNER)
# A virtual tag's key (`vtag:<key>`, `vtags.<key>`): a lowercase word of at most 63 characters.
TAG_KEY_PATTERN: Final = r"[a-z][a-z0-9_]{0,62}"
# Who may create, change or delete the chargeback rules: virtual tags (and budgets). Editors
# shape how costs are shown; they never touch a token or an import.
CHARGEBACK_CHANGERS: Final = (Role.ORGANIZATION_OWNER, Role.EDITOR)


# The `circleci:*` tags of a cost line (as reports, filters and FOCUS exports name them) and
# the column of the costs view that holds each.
TAG_COLUMNS: Final = {
    "circleci:organization_id": "tag_organization_id",
    "circleci:project_id": "tag_project_id",
    "circleci:vcs_name": "tag_vcs_name",
    "circleci:vcs_url": "tag_vcs_url",
    "circleci:vcs_branch": "tag_vcs_branch",
    "circleci:pipeline_id": "tag_pipeline_id",
    "circleci:job_build_status": "tag_job_build_status",
}

# The reporting periods a report can name instead of --from/--to.
PERIODS: Final = (
    "this_month",
    "last_month",
    "last_7_days",
    "last_30_days",
    "last_3_months",
    "last_6_months",
    "last_12_months",
    "year_to_date",
)


def sql_values(words: type[StrEnum]) -> str:
    """The enum's values as a SQL list, for a CHECK constraint: ('A', 'B')."""
    return "(" + ", ".join(f"'{word.value}'" for word in words) + ")"


def token_fingerprint(token: str) -> str:
    """Identifies a token (or another secret: a webhook URL) without revealing it: 'sha256:' and
    16 hex digits of its SHA-256.

    Safe to store, log and show; enough to spot one token used by two integrations.
    """
    return "sha256:" + hashlib.sha256(token.encode("utf-8")).hexdigest()[:16]
