"""The documented CSV format (``docs/data-format.md``): one file per entity or relationship type.

Every row is validated with a pydantic model; a problem names the file, the line and the field.
:func:`read_csv_folder` never raises for bad input: it returns the problems with the batch of valid
rows, and the caller decides (store nothing, or ``--skip-invalid``).
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from sitegraph.errors import Problem
from sitegraph.graph.store import GraphBatch

log = logging.getLogger(__name__)

MAX_PROBLEMS = 200


def _blank_to_none(v: Any) -> Any:
    return None if isinstance(v, str) and v.strip() == "" else v


def _split_list(v: Any) -> Any:
    if v is None:
        return []
    if isinstance(v, str):
        return [p.strip() for p in v.split("|") if p.strip()]
    return v


Opt = BeforeValidator(_blank_to_none)
OptStr = Annotated[str | None, Opt]
OptInt = Annotated[Annotated[int, Field(ge=0)] | None, Opt]
OptFloat = Annotated[float | None, Opt]
OptDate = Annotated[date | None, Opt]
Key = Annotated[str, Field(min_length=1, max_length=1000, pattern=r"^\S(.*\S)?$")]
StrList = Annotated[list[str], BeforeValidator(_split_list)]
Channel = Literal["call", "email", "visit", "fax", "portal"]
Outcome = Literal["resolved", "improved", "no_change", "worse", "pending"]


class Row(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class SiteRow(Row):
    id: Key
    name: str = Field(min_length=1)
    city: OptStr = None
    state: OptStr = None
    zip: OptStr = None
    country: OptStr = None
    lat: Annotated[Annotated[float, Field(ge=-90, le=90)] | None, Opt] = None
    lon: Annotated[Annotated[float, Field(ge=-180, le=180)] | None, Opt] = None
    aliases: StrList = []


class InvestigatorRow(Row):
    id: Key
    name: str = Field(min_length=1)
    degrees: StrList = []
    affiliations: StrList = []


class StudyRow(Row):
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")]
    title: OptStr = None
    phase: OptStr = None
    overall_status: OptStr = None
    study_type: OptStr = None
    start_date: OptStr = None
    completion_date: OptStr = None
    enrollment: OptInt = None


class SponsorRow(Row):
    id: Key
    name: str = Field(min_length=1)
    agency_class: OptStr = None


class ConditionRow(Row):
    id: Key
    name: str = Field(min_length=1)
    therapeutic_area: OptStr = None


class SiteStudyRow(Row):
    site_id: Key
    study_id: Key
    status: OptStr = None
    activation_date: OptDate = None
    activation_days: OptInt = None
    enrolled: OptInt = None
    target: OptInt = None
    screened: OptInt = None
    screen_failures: OptInt = None
    contract_revisions: OptInt = None
    ethics_approval_days: OptInt = None
    open_queries: OptInt = None
    surveys_received: OptInt = None


class InvestigatorSiteRow(Row):
    investigator_id: Key
    site_id: Key


class InvestigatorStudyRow(Row):
    investigator_id: Key
    study_id: Key
    role: Literal["PRINCIPAL_INVESTIGATOR", "SUB_INVESTIGATOR", "STUDY_CHAIR", "STUDY_DIRECTOR", "STUDY_PRINCIPAL_INVESTIGATOR"]
    site_id: Annotated[str, BeforeValidator(lambda v: "" if v is None else v)] = ""


class StudySponsorRow(Row):
    study_id: Key
    sponsor_id: Key
    role: Literal["lead", "collaborator"] = "lead"


class StudyConditionRow(Row):
    study_id: Key
    condition_id: Key


class InteractionRow(Row):
    id: Key
    site_id: Key
    investigator_id: OptStr = None
    study_id: OptStr = None
    channel: Channel
    direction: Annotated[Literal["inbound", "outbound"] | None, Opt] = None
    occurred_at: datetime
    note: str = ""
    tactic_id: OptStr = None
    outcome: Annotated[Outcome | None, Opt] = None
    sentiment: Annotated[Annotated[float, Field(ge=-1, le=1)] | None, Opt] = None


class InteractionBarrierRow(Row):
    interaction_id: Key
    barrier_id: Key
    source: Literal["observed", "tagged"] = "observed"
    severity: Annotated[Annotated[float, Field(ge=0, le=1)] | None, Opt] = None
    confidence: Annotated[Annotated[float, Field(ge=0, le=1)] | None, Opt] = None


@dataclass(frozen=True)
class FileSpec:
    """One CSV file of the format: its name, its row model, and how a row becomes graph."""

    name: str
    model: type[Row]
    description: str
    add: Callable[[GraphBatch, Any], None]


def _props(row: Row, *exclude: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in row.model_dump(exclude=set(exclude)).items():
        if isinstance(value, date):  # datetimes too
            value = value.isoformat()
        out[name] = value
    # A blank cell means "not known here": it sets nothing (and removes nothing already stored).
    return {k: v for k, v in out.items() if v is not None and v != []}


BARRIER_NS = "https://w3id.org/sitegraph/barrier/"
TACTIC_NS = "https://w3id.org/sitegraph/tactic/"


def concept_iri(value: str, namespace: str) -> str:
    """An ontology IRI from an IRI or a compact id (``stalled-ethics-approval``)."""
    return value if "://" in value else namespace + value


def _add_interaction(b: GraphBatch, r: InteractionRow) -> None:
    b.add_node("Interaction", r.id, _props(r, "id", "site_id", "investigator_id", "study_id", "tactic_id"))
    b.add_rel("WITH_SITE", "Interaction", r.id, "Site", r.site_id)
    if r.investigator_id:
        b.add_rel("WITH_INVESTIGATOR", "Interaction", r.id, "Investigator", r.investigator_id)
    if r.study_id:
        b.add_rel("ABOUT_STUDY", "Interaction", r.id, "Study", r.study_id)
    if r.tactic_id:
        b.add_rel("APPLIED", "Interaction", r.id, "Tactic", concept_iri(r.tactic_id, TACTIC_NS), {"outcome": r.outcome})


# Order matters: nodes before the relationships that join them.
FILES: tuple[FileSpec, ...] = (
    FileSpec("sites.csv", SiteRow, "Sites", lambda b, r: b.add_node("Site", r.id, _props(r, "id"))),
    FileSpec(
        "investigators.csv", InvestigatorRow, "Investigators", lambda b, r: b.add_node("Investigator", r.id, _props(r, "id"))
    ),
    FileSpec("studies.csv", StudyRow, "Studies", lambda b, r: b.add_node("Study", r.id, _props(r, "id"))),
    FileSpec("sponsors.csv", SponsorRow, "Sponsors", lambda b, r: b.add_node("Sponsor", r.id, _props(r, "id"))),
    FileSpec("conditions.csv", ConditionRow, "Conditions", lambda b, r: b.add_node("Condition", r.id, _props(r, "id"))),
    FileSpec(
        "site_studies.csv",
        SiteStudyRow,
        "Site takes part in study, with per-site facts (PARTICIPATES_IN)",
        lambda b, r: b.add_rel("PARTICIPATES_IN", "Site", r.site_id, "Study", r.study_id, _props(r, "site_id", "study_id")),
    ),
    FileSpec(
        "investigator_sites.csv",
        InvestigatorSiteRow,
        "Investigator works at site (WORKS_AT)",
        lambda b, r: b.add_rel("WORKS_AT", "Investigator", r.investigator_id, "Site", r.site_id),
    ),
    FileSpec(
        "investigator_studies.csv",
        InvestigatorStudyRow,
        "Investigator's role on a study at a site (INVESTIGATOR_ON)",
        lambda b, r: b.add_rel(
            "INVESTIGATOR_ON", "Investigator", r.investigator_id, "Study", r.study_id, {"role": r.role, "site_id": r.site_id}
        ),
    ),
    FileSpec(
        "study_sponsors.csv",
        StudySponsorRow,
        "Study sponsored by (SPONSORED_BY)",
        lambda b, r: b.add_rel("SPONSORED_BY", "Study", r.study_id, "Sponsor", r.sponsor_id, {"role": r.role}),
    ),
    FileSpec(
        "study_conditions.csv",
        StudyConditionRow,
        "Study is about condition (STUDIES)",
        lambda b, r: b.add_rel("STUDIES", "Study", r.study_id, "Condition", r.condition_id),
    ),
    FileSpec("interactions.csv", InteractionRow, "Interactions with sites", _add_interaction),
    FileSpec(
        "interaction_barriers.csv",
        InteractionBarrierRow,
        "Barriers an interaction raised (CONCERNS)",
        lambda b, r: b.add_rel(
            "CONCERNS",
            "Interaction",
            r.interaction_id,
            "Barrier",
            concept_iri(r.barrier_id, BARRIER_NS),
            _props(r, "interaction_id", "barrier_id"),
        ),
    ),
)
FILES_BY_NAME = {spec.name: spec for spec in FILES}


@dataclass
class CsvResult:
    batch: GraphBatch
    problems: list[Problem] = field(default_factory=list)
    files: int = 0
    rows: int = 0
    skipped: int = 0


def _format_error(err: dict[str, Any]) -> tuple[str, str]:
    loc = ".".join(str(p) for p in err.get("loc", ())) or "row"
    msg = str(err.get("msg", "invalid"))
    value = err.get("input")
    if isinstance(value, str) and len(value) < 60:
        msg += f" (got {value!r})"
    return loc, msg


def _rows(path: Path, problems: list[Problem]) -> Iterator[tuple[int, dict[str, str | None]]]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        problems.append(Problem(str(path), f"not UTF-8 text (byte {e.start}: {e.reason})"))
        return
    except OSError as e:
        problems.append(Problem(str(path), f"cannot read: {e.strerror}"))
        return
    reader = csv.DictReader(text.splitlines(keepends=True), strict=True)
    try:
        header = reader.fieldnames
        if not header:
            problems.append(Problem(str(path), "empty file (no header row)", line=1))
            return
        for row in reader:
            line = reader.line_num
            extra = row.pop(None, None)
            if extra:
                problems.append(Problem(str(path), f"{len(extra)} more value(s) than header columns", line=line))
                continue
            yield line, row
    except csv.Error as e:
        problems.append(Problem(str(path), f"malformed CSV: {e}", line=reader.line_num))


def read_csv_folder(folder: Path, *, progress: Callable[[int], None] | None = None) -> CsvResult:
    """Read every known CSV file of ``folder`` into one batch; report every invalid row."""
    result = CsvResult(batch=GraphBatch())
    if not folder.is_dir():
        result.problems.append(Problem(str(folder), "not a folder"))
        return result
    unknown = sorted(p.name for p in folder.glob("*.csv") if p.name not in FILES_BY_NAME)
    for name in unknown:
        result.problems.append(Problem(str(folder / name), f"unknown CSV file; expected one of: {', '.join(FILES_BY_NAME)}"))
    for spec in FILES:
        path = folder / spec.name
        if not path.exists():
            continue
        result.files += 1
        expected = set(spec.model.model_fields)
        for line, raw in _rows(path, result.problems):
            result.rows += 1
            unknown_cols = sorted(k for k in raw if k not in expected)
            if unknown_cols:
                result.problems.append(Problem(str(path), f"unknown column(s): {', '.join(unknown_cols)}", line=line))
                result.skipped += 1
                continue
            try:
                row = spec.model.model_validate({k: v for k, v in raw.items()})
            except ValidationError as e:
                result.skipped += 1
                for err in e.errors():
                    loc, msg = _format_error(dict(err))
                    result.problems.append(Problem(str(path), msg, line=line, field=loc))
                continue
            spec.add(result.batch, row)
            if progress:
                progress(1)
    if len(result.problems) > MAX_PROBLEMS:
        extra = len(result.problems) - MAX_PROBLEMS
        result.problems = [*result.problems[:MAX_PROBLEMS], Problem(str(folder), f"... and {extra} more problem(s)")]
    return result


def count_rows(folder: Path) -> int:
    """Data rows in the known CSV files (for a progress bar's total)."""
    total = 0
    for spec in FILES:
        path = folder / spec.name
        if path.exists():
            with path.open("rb") as f:
                total += max(0, sum(1 for _ in f) - 1)
    return total


def write_csv(folder: Path, name: str, rows: list[dict[str, Any]]) -> Path:
    """Write rows of one format file (used by the generator's ``--out``); lists joined with '|'."""
    spec = FILES_BY_NAME[name]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    columns = list(spec.model.model_fields)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        for row in rows:
            w.writerow({k: "|".join(v) if isinstance(v, list) else ("" if v is None else v) for k, v in row.items()})
    return path
