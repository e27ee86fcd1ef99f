"""The generated usage source: the seeded generator serving a fixed set of organizations."""

from collections.abc import Sequence
from datetime import datetime

from circlecost_emulator.dialect import UsageRow
from circlecost_emulator.export import ExportPart, split_into_parts
from circlecost_emulator.generator import HEADER_LINE, GeneratedRow, UsageGenerator
from circlecost_emulator.organizations import Organization


class GeneratedSource:
    """Serves generated rows for its organizations; unknown organization ids have no rows."""

    def __init__(self, generator: UsageGenerator, organizations: Sequence[Organization]) -> None:
        self._generator = generator
        self._organizations = {org.id: org for org in organizations}

    def organizations(self) -> list[Organization]:
        return list(self._organizations.values())

    def rows(self, org_ids: Sequence[str], start: datetime, end: datetime) -> list[GeneratedRow]:
        known = [self._organizations[i] for i in org_ids if i in self._organizations]
        return [row for org in known for row in self._generator.rows(org, start, end)]

    def export_parts(
        self, org_ids: Sequence[str], start: datetime, end: datetime, rows_per_part: int
    ) -> list[ExportPart]:
        lines = [row.render() for row in self.rows(org_ids, start, end)]
        return split_into_parts(HEADER_LINE, lines, rows_per_part)

    def expected_rows(
        self, org_ids: Sequence[str], start: datetime, end: datetime
    ) -> list[UsageRow]:
        return [dict(row.values) for row in self.rows(org_ids, start, end)]
