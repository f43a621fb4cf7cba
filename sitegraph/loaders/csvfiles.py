"""The documented CSV format (``docs/data-format.md``): one file per entity or relationship type.

Every row is validated with a pydantic model; a problem names the file, the line and the field.
:func:`read_csv_folder` never raises for bad input: it returns the problems with the batch of valid
rows, and the caller decides (store nothing, or ``--skip-invalid``).
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from sitegraph.errors import Problem
from sitegraph.graph.store import GraphBatch, RelKey, gc_paused
from sitegraph.workers import in_fork, spare_core

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


# --- the fast path -----------------------------------------------------------------------------
# Every cell is first checked by a plain converter that accepts only canonical forms for which the
# pydantic model accepts the cell and gives the same value (a key without surrounding spaces, an
# integer without sign or leading zeros, an ISO date-time with an offset within ±14:59, ...). A
# converter returns ``None`` for a blank optional cell and ``_SLOW`` when it is not sure; then the
# whole row goes through the pydantic model, which either accepts it (with its own conversion) or
# reports the problems. So the fast path changes the speed, never the result or the messages
# (tests/test_store.py compares both paths on fuzzed rows).

_SLOW: Any = object()
Cell = Callable[[str], Any]

_INT = re.compile(r"0|[1-9][0-9]{0,17}")
_FLOAT = re.compile(r"-?(?:0|[1-9][0-9]{0,14})(?:\.[0-9]{1,15})?")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{6})?(?:Z|[+-](?:0[0-9]|1[0-4]):[0-5][0-9])?"
)
_STUDY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]*")


def _key(s: str) -> Any:
    if s and len(s) <= 1000 and not s[0].isspace() and not s[-1].isspace() and "\n" not in s:
        return s
    return _SLOW


def _name(s: str) -> Any:
    return s if s and not s[0].isspace() and not s[-1].isspace() else _SLOW


def _text(s: str) -> Any:
    return s if not s or (not s[0].isspace() and not s[-1].isspace()) else _SLOW


def _opt_text(s: str) -> Any:
    if not s:
        return None
    return s if not s[0].isspace() and not s[-1].isspace() else _SLOW


def _opt_int(s: str) -> Any:
    if not s:
        return None
    return int(s) if _INT.fullmatch(s) else _SLOW


def _opt_float(lo: float, hi: float) -> Cell:
    def check(s: str) -> Any:
        if not s:
            return None
        if _FLOAT.fullmatch(s):
            f = float(s)
            if lo <= f <= hi:
                return f
        return _SLOW

    return check


def _opt_date(s: str) -> Any:
    if not s:
        return None
    if _DATE.fullmatch(s):
        try:
            date.fromisoformat(s)
        except ValueError:
            return _SLOW
        return s
    return _SLOW


def _datetime(s: str) -> Any:
    if _DATETIME.fullmatch(s):
        try:
            return datetime.fromisoformat(s).isoformat()
        except ValueError:
            return _SLOW
    return _SLOW


def _choice(values: tuple[str, ...], *, optional: bool = False) -> Cell:
    allowed = frozenset(values)

    def check(s: str) -> Any:
        if s in allowed:
            return s
        return None if optional and not s else _SLOW

    return check


def _study_id(s: str) -> Any:
    return s if _STUDY_ID.fullmatch(s) else _SLOW


def _str_list(s: str) -> Any:
    if "|" not in s:
        s = s.strip()
        return [s] if s else None
    parts = [p for p in (p.strip() for p in s.split("|")) if p]
    return parts or None


def _values(row: Row) -> dict[str, Any]:
    """A validated row as the fast path gives it: blank cells and empty lists left out, dates as text."""
    out: dict[str, Any] = {}
    for name, value in row.model_dump().items():
        if value is None or value == []:
            continue
        if isinstance(value, date):  # datetimes too
            value = value.isoformat()
        out[name] = value
    return out


@dataclass(frozen=True)
class FileSpec:
    """One CSV file of the format: its name, its row model, and how a row becomes graph.

    ``cells`` holds the fast converter of each column; ``sink`` adds a row's values (blank cells
    left out) to a batch and may keep the dict it is given.
    """

    name: str
    model: type[Row]
    description: str
    sink: Callable[[GraphBatch, dict[str, Any]], None]
    cells: Mapping[str, Cell]

    def add(self, batch: GraphBatch, row: Row) -> None:
        """Add one validated row to the batch."""
        self.sink(batch, _values(row))


BARRIER_NS = "https://w3id.org/sitegraph/barrier/"
TACTIC_NS = "https://w3id.org/sitegraph/tactic/"


def concept_iri(value: str, namespace: str) -> str:
    """An ontology IRI from an IRI or a compact id (``stalled-ethics-approval``)."""
    return value if "://" in value else namespace + value


def _node(label: str) -> Callable[[GraphBatch, dict[str, Any]], None]:
    def sink(b: GraphBatch, v: dict[str, Any]) -> None:
        b.merge_node(label, v.pop("id"), v)

    return sink


def _add_interaction(b: GraphBatch, v: dict[str, Any]) -> None:
    iid = v.pop("id")
    site = v.pop("site_id")
    investigator = v.pop("investigator_id", None)
    study = v.pop("study_id", None)
    tactic = v.pop("tactic_id", None)
    b.merge_node("Interaction", iid, dict(v))  # a compact copy: popping keys does not shrink a dict
    b.merge_rel("WITH_SITE", "Interaction", iid, "Site", site, {})
    if investigator:
        b.merge_rel("WITH_INVESTIGATOR", "Interaction", iid, "Investigator", investigator, {})
    if study:
        b.merge_rel("ABOUT_STUDY", "Interaction", iid, "Study", study, {})
    if tactic:
        b.merge_rel("APPLIED", "Interaction", iid, "Tactic", concept_iri(tactic, TACTIC_NS), {"outcome": v.get("outcome")})


_OPT_TEXT = ("city", "state", "zip", "country")
_COUNTS = (
    "activation_days",
    "enrolled",
    "target",
    "screened",
    "screen_failures",
    "contract_revisions",
    "ethics_approval_days",
    "open_queries",
    "surveys_received",
)
_ROLES = ("PRINCIPAL_INVESTIGATOR", "SUB_INVESTIGATOR", "STUDY_CHAIR", "STUDY_DIRECTOR", "STUDY_PRINCIPAL_INVESTIGATOR")

# Order matters: nodes before the relationships that join them.
FILES: tuple[FileSpec, ...] = (
    FileSpec(
        "sites.csv",
        SiteRow,
        "Sites",
        _node("Site"),
        {
            "id": _key,
            "name": _name,
            **dict.fromkeys(_OPT_TEXT, _opt_text),
            "lat": _opt_float(-90, 90),
            "lon": _opt_float(-180, 180),
            "aliases": _str_list,
        },
    ),
    FileSpec(
        "investigators.csv",
        InvestigatorRow,
        "Investigators",
        _node("Investigator"),
        {"id": _key, "name": _name, "degrees": _str_list, "affiliations": _str_list},
    ),
    FileSpec(
        "studies.csv",
        StudyRow,
        "Studies",
        _node("Study"),
        {
            "id": _study_id,
            **dict.fromkeys(("title", "phase", "overall_status", "study_type", "start_date", "completion_date"), _opt_text),
            "enrollment": _opt_int,
        },
    ),
    FileSpec("sponsors.csv", SponsorRow, "Sponsors", _node("Sponsor"), {"id": _key, "name": _name, "agency_class": _opt_text}),
    FileSpec(
        "conditions.csv",
        ConditionRow,
        "Conditions",
        _node("Condition"),
        {"id": _key, "name": _name, "therapeutic_area": _opt_text},
    ),
    FileSpec(
        "site_studies.csv",
        SiteStudyRow,
        "Site takes part in study, with per-site facts (PARTICIPATES_IN)",
        lambda b, v: b.merge_rel("PARTICIPATES_IN", "Site", v.pop("site_id"), "Study", v.pop("study_id"), v),
        {
            "site_id": _key,
            "study_id": _key,
            "status": _opt_text,
            "activation_date": _opt_date,
            **dict.fromkeys(_COUNTS, _opt_int),
        },
    ),
    FileSpec(
        "investigator_sites.csv",
        InvestigatorSiteRow,
        "Investigator works at site (WORKS_AT)",
        lambda b, v: b.merge_rel("WORKS_AT", "Investigator", v["investigator_id"], "Site", v["site_id"], {}),
        {"investigator_id": _key, "site_id": _key},
    ),
    FileSpec(
        "investigator_studies.csv",
        InvestigatorStudyRow,
        "Investigator's role on a study at a site (INVESTIGATOR_ON)",
        lambda b, v: b.merge_rel(
            "INVESTIGATOR_ON",
            "Investigator",
            v["investigator_id"],
            "Study",
            v["study_id"],
            {"role": v["role"], "site_id": v.get("site_id", "")},
        ),
        {"investigator_id": _key, "study_id": _key, "role": _choice(_ROLES), "site_id": _text},
    ),
    FileSpec(
        "study_sponsors.csv",
        StudySponsorRow,
        "Study sponsored by (SPONSORED_BY)",
        lambda b, v: b.merge_rel("SPONSORED_BY", "Study", v["study_id"], "Sponsor", v["sponsor_id"], {"role": v["role"]}),
        {"study_id": _key, "sponsor_id": _key, "role": _choice(("lead", "collaborator"))},
    ),
    FileSpec(
        "study_conditions.csv",
        StudyConditionRow,
        "Study is about condition (STUDIES)",
        lambda b, v: b.merge_rel("STUDIES", "Study", v["study_id"], "Condition", v["condition_id"], {}),
        {"study_id": _key, "condition_id": _key},
    ),
    FileSpec(
        "interactions.csv",
        InteractionRow,
        "Interactions with sites",
        _add_interaction,
        {
            "id": _key,
            "site_id": _key,
            "investigator_id": _opt_text,
            "study_id": _opt_text,
            "channel": _choice(("call", "email", "visit", "fax", "portal")),
            "direction": _choice(("inbound", "outbound"), optional=True),
            "occurred_at": _datetime,
            "note": _text,
            "tactic_id": _opt_text,
            "outcome": _choice(("resolved", "improved", "no_change", "worse", "pending"), optional=True),
            "sentiment": _opt_float(-1, 1),
        },
    ),
    FileSpec(
        "interaction_barriers.csv",
        InteractionBarrierRow,
        "Barriers an interaction raised (CONCERNS)",
        lambda b, v: b.merge_rel(
            "CONCERNS", "Interaction", v.pop("interaction_id"), "Barrier", concept_iri(v.pop("barrier_id"), BARRIER_NS), v
        ),
        {
            "interaction_id": _key,
            "barrier_id": _key,
            "source": _choice(("observed", "tagged")),
            "severity": _opt_float(0, 1),
            "confidence": _opt_float(0, 1),
        },
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


_BLOCK = 1 << 22  # characters of text split into lines at a time


def _lines(text: str) -> Iterator[str]:
    """``text.splitlines(keepends=True)``, a block at a time (cut after a newline) to bound memory."""
    start, n = 0, len(text)
    while start < n:
        end = text.find("\n", min(start + _BLOCK, n) - 1) + 1 or n
        yield from text[start:end].splitlines(keepends=True)
        start = end


def _read_text(path: Path, problems: list[Problem]) -> str | None:
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        problems.append(Problem(str(path), f"not UTF-8 text (byte {e.start}: {e.reason})"))
    except OSError as e:
        problems.append(Problem(str(path), f"cannot read: {e.strerror}"))
    return None


_PROGRESS_EVERY = 10_000


def _read_file(path: Path, spec: FileSpec, result: CsvResult, progress: Callable[[int], None] | None) -> None:
    problems = result.problems
    text = _read_text(path, problems)
    if text is None:
        return
    reader = csv.reader(_lines(text), strict=True)
    batch, sink, model = result.batch, spec.sink, spec.model
    done = 0
    try:
        header = next(reader, None)
        if not header:
            problems.append(Problem(str(path), "empty file (no header row)", line=1))
            return
        fields = model.model_fields
        index = {name: i for i, name in enumerate(header)}  # a repeated column: the last one wins, as in DictReader
        width = len(header)
        unknown = sorted(name for name in index if name not in fields)
        unknown_msg = f"unknown column(s): {', '.join(unknown)}" if unknown else ""
        cells = [(name, index[name], spec.cells[name]) for name in fields if name in index]
        defaults = {
            name: f.default
            for name, f in fields.items()
            if name not in index and not f.is_required() and f.default is not None and f.default != []
        }
        fast = all(name in index or not f.is_required() for name, f in fields.items())
        for row in reader:
            n = len(row)
            if not n:
                continue  # a blank line, as DictReader skips it
            line = reader.line_num
            if n > width:
                problems.append(Problem(str(path), f"{n - width} more value(s) than header columns", line=line))
                continue
            result.rows += 1
            if unknown_msg:
                problems.append(Problem(str(path), unknown_msg, line=line))
                result.skipped += 1
                continue
            if fast and n == width:
                values = dict(defaults)
                for name, i, check in cells:
                    x = check(row[i])
                    if x is None:
                        continue
                    if x is _SLOW:
                        break
                    values[name] = x
                else:
                    sink(batch, values)
                    done += 1
                    if progress and done % _PROGRESS_EVERY == 0:
                        progress(_PROGRESS_EVERY)
                    continue
            # Not sure, or not valid: the model decides, and names every problem.
            try:
                valid = model.model_validate({name: row[i] if i < n else None for name, i in index.items()})
            except ValidationError as e:
                result.skipped += 1
                for err in e.errors():
                    loc, msg = _format_error(dict(err))
                    problems.append(Problem(str(path), msg, line=line, field=loc))
                continue
            sink(batch, _values(valid))
            done += 1
            if progress and done % _PROGRESS_EVERY == 0:
                progress(_PROGRESS_EVERY)
    except csv.Error as e:
        problems.append(Problem(str(path), f"malformed CSV: {e}", line=reader.line_num))
    finally:
        if progress and done % _PROGRESS_EVERY:
            progress(done % _PROGRESS_EVERY)


#: From this many bytes in the files besides the largest, a forked worker reads them (see :func:`read_csv_folder`).
FORK_BYTES = 4_000_000


def read_csv_folder(folder: Path, *, progress: Callable[[int], None] | None = None) -> CsvResult:
    """Read every known CSV file of ``folder`` into one batch; report every invalid row.

    When the files besides the largest hold at least :data:`FORK_BYTES` and a core is idle
    (:func:`~sitegraph.workers.spare_core`), a worker forked from this process reads them while
    this process reads the largest (on 2 cores, the interactions beside the
    rest); the worker's rows come back pickled and are merged in the files' order, so the batch, the
    problems and their order are the same as when one process reads every file.
    """
    result = CsvResult(batch=GraphBatch())
    if not folder.is_dir():
        result.problems.append(Problem(str(folder), "not a folder"))
        return result
    unknown = sorted(p.name for p in folder.glob("*.csv") if p.name not in FILES_BY_NAME)
    for name in unknown:
        result.problems.append(Problem(str(folder / name), f"unknown CSV file; expected one of: {', '.join(FILES_BY_NAME)}"))
    present = [(spec, folder / spec.name) for spec in FILES if (folder / spec.name).exists()]
    result.files = len(present)
    sizes = [_size(path) for _, path in present]
    largest = sizes.index(max(sizes)) if sizes else 0
    with gc_paused():
        if sum(sizes) - (sizes[largest] if sizes else 0) < FORK_BYTES or not spare_core():
            for spec, path in present:
                _read_file(path, spec, result, progress)
        else:
            before, (spec, path), after = present[:largest], present[largest], present[largest + 1 :]
            log.info("reading %s here and %d other file(s) in a forked worker", spec.name, len(before) + len(after))
            mine = CsvResult(batch=GraphBatch())
            with in_fork(_read_files, (before, after), None) as others:
                _read_file(path, spec, mine, progress)
                parts = [_unpack(data) for data in others()]
            _merge_results(result, [parts[0], mine, parts[1]])
            if progress:
                progress(sum(part.rows - part.skipped for part in parts))  # the worker's valid rows
    if len(result.problems) > MAX_PROBLEMS:
        extra = len(result.problems) - MAX_PROBLEMS
        result.problems = [*result.problems[:MAX_PROBLEMS], Problem(str(folder), f"... and {extra} more problem(s)")]
    return result


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _read_files(parts: tuple[list[tuple[FileSpec, Path]], ...], _: None) -> list[tuple[Any, ...]]:
    """In a forked worker: each list of files read into a result of its own, for the parent to merge.

    The files come with the fork (a :class:`FileSpec` holds functions that do not pickle). A result
    goes back as plain data, the relationships' keys as plain tuples (a named tuple pickles through
    Python code, one call per relationship each way): see :func:`_unpack`.
    """
    out = []
    with gc_paused():
        for files in parts:
            part = CsvResult(batch=GraphBatch())
            for spec, path in files:
                _read_file(path, spec, part, None)
            rels = part.batch.rels
            out.append((part.problems, part.rows, part.skipped, part.batch.nodes, list(map(tuple, rels)), list(rels.values())))
    return out


def _unpack(data: tuple[Any, ...]) -> CsvResult:
    """A result that :func:`_read_files` sent (its key strings no longer shared with the batch's)."""
    problems, rows, skipped, nodes, rel_keys, rel_props = data
    rels = dict(zip(map(partial(tuple.__new__, RelKey), rel_keys), rel_props, strict=True))
    return CsvResult(batch=GraphBatch(nodes=nodes, rels=rels), problems=problems, rows=rows, skipped=skipped)


def _merge_results(result: CsvResult, parts: list[CsvResult]) -> None:
    """Add results of files read apart to ``result``, in order, as if ``result`` had read them in turn."""
    for part in parts:
        result.problems += part.problems
        result.rows += part.rows
        result.skipped += part.skipped
        _merge_batch(result.batch, part.batch)


def _merge_batch(batch: GraphBatch, part: GraphBatch) -> None:
    """``part``'s nodes and relationships merged into ``batch`` as :meth:`GraphBatch.merge_node` and
    :meth:`~GraphBatch.merge_rel` merge them (kept, not copied); the keys stay in their first-added order."""
    for label, rows in part.nodes.items():
        mine = batch.nodes.get(label)
        if mine is None:
            batch.nodes[label] = rows
        else:
            _merge_props(mine, rows)
    if batch.rels.keys().isdisjoint(part.rels.keys()):  # the usual case: each file its own types
        batch.rels.update(part.rels)
    else:
        _merge_props(batch.rels, part.rels)
    if not batch._keys:
        batch._keys = part._keys


def _merge_props(into: dict[Any, dict[str, Any]], items: dict[Any, dict[str, Any]]) -> None:
    for key, props in items.items():
        existing = into.get(key)
        if existing is None:
            into[key] = props
        else:
            existing.update(props)


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
