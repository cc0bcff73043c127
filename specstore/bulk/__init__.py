"""The operator's whole-store operations: export, import, migrate, stats, repair and gc.

Every scan is SCAN (never KEYS) over each backend and each cluster master, read in pipelined
batches, so memory stays bounded whatever the key count. One module per operation:
:mod:`.exporting`, :mod:`.importing` (:mod:`.import_plan` for ``--dry-run``,
:mod:`.export_format` for the records both read and write), :mod:`.migrating`,
:mod:`.stats`, :mod:`.repairing` (its rules: :mod:`specstore.core.repair_rules`) and :mod:`.gc`;
:mod:`.common` holds what they share.
"""

from specstore.bulk.common import (
    MAX_REPORTED,
    ExportFormat,
    ImportFormat,
    Progress,
    SpecKey,
    spec_key_batches,
)
from specstore.bulk.exporting import ExportSummary, export_specs
from specstore.bulk.importing import ImportSummary, import_specs, read_records
from specstore.bulk.migrating import (
    MigrateCursor,
    MigrateSummary,
    exact_batches,
    migrate_documents,
    parse_cursor,
)
from specstore.bulk.repairing import RepairReport, apply_plan, observe, repair
from specstore.bulk.stats import StoreStats, collect_stats

__all__ = [
    "MAX_REPORTED",
    "ExportFormat",
    "ExportSummary",
    "ImportFormat",
    "ImportSummary",
    "MigrateCursor",
    "MigrateSummary",
    "Progress",
    "RepairReport",
    "SpecKey",
    "StoreStats",
    "apply_plan",
    "collect_stats",
    "exact_batches",
    "export_specs",
    "import_specs",
    "migrate_documents",
    "observe",
    "parse_cursor",
    "read_records",
    "repair",
    "spec_key_batches",
]
