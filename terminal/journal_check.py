"""Whether a journal shows an edit (`ykt journal check`; docs/journal.md, "Checking a journal").

Without a key the journal cannot prove it was not edited; it can show the edits a careless hand or a
naive one makes: SQLite's own check, the journal's invariants, a counter used twice (a copied
record), a record id gone that no recorded prune removed (a deleted record), and a record not marked
test whose TAC verifies under a TEST ONLY issuer's keys (a test record passed off as real). What
catches a determined editor is the card's own counters at clearing (docs/reliability.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cardlib.errors import EXIT_REFUSED
from cardlib.keystore import builtin_store
from cardlib.settlement import verify_records
from terminal.journal import SETTLED, Journal, JournalError


class JournalCheckError(JournalError):
    """The journal shows an edit or a broken invariant: refused for export and verification."""

    exit_code = EXIT_REFUSED


@dataclass(frozen=True)
class JournalCheck:
    """Errors (an edit or a broken invariant), warnings (older journals' leftovers) and notes (grey
    records for the back office)."""

    records: int
    prunes: int
    errors: tuple[str, ...]
    warnings: tuple[str, ...]
    notes: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "records": self.records, "prunes": self.prunes, "errors": list(self.errors),
                "warnings": list(self.warnings), "notes": list(self.notes)}

    def raise_if_failed(self, what: str) -> None:
        if self.errors:
            shown = "; ".join(self.errors[:3]) + (" …" if len(self.errors) > 3 else "")
            raise JournalCheckError(f"{what}: the journal check found {len(self.errors)} problem(s): {shown}"
                                    " (ykt journal check lists them)")


def test_keys_records(journal: Journal) -> list[int]:
    """Ids of settled records not marked test whose TAC verifies under the keys of a TEST ONLY issuer
    (each one the package ships, cardlib.keystore.builtin_store)."""
    items = [r.to_json() for state in SETTLED for r in journal.records(state) if not r.test]
    found: set[int] = set()
    for issuer in builtin_store().issuers:
        if not items:
            break
        failed = set(verify_records(items, issuer).failed)
        found |= {obj["id"] for obj in items if obj["id"] not in failed}
        items = [obj for obj in items if obj["id"] in failed]
    return sorted(found)


def check_journal(journal: Journal) -> JournalCheck:
    """Every check of the module docstring, over the whole journal."""
    errors = journal.integrity_errors()
    gaps, old_gaps = journal.id_gaps()
    errors += gaps
    errors += [f"record {rid}: NOT MARKED TEST, YET ITS TAC VERIFIES UNDER A TEST ONLY ISSUER'S KEYS"
               " (test money passed off as real, or a terminal running on test keys)"
               for rid in test_keys_records(journal)]
    return JournalCheck(journal.count(), len(journal.prunes()), tuple(errors),
                        tuple(journal.integrity_warnings() + old_gaps), tuple(journal.integrity_notes()))
