"""Load ClinicalTrials.gov study records into a :class:`~sitegraph.graph.store.GraphBatch`.

Input
    Files and folders (expanded recursively by :func:`iter_files`: ``.json``, ``.xml`` and ``.zip``).
    The format is detected from the content, not the extension: v2 JSON (one study, a top-level
    array of studies, or an API page ``{"studies": [...]}``), legacy v1 JSON (``FullStudiesResponse``),
    classic ``<clinical_study>`` XML, and zip archives holding any of these (members are named
    ``archive.zip!member`` in problems).

Validation
    :func:`read_ctgov` never raises for bad input. Every problem (malformed or truncated JSON/XML,
    bytes that are not UTF-8, empty files, unknown formats, broken zips, a study without an NCT id
    or with one that is not ``NCT`` + 8 digits, unparseable dates, enrollment or coordinates) becomes
    a :class:`~sitegraph.errors.Problem` naming the file, and the line or field where known. Each
    study is parsed into an intermediate :class:`StudyRecord` first and only valid records reach the
    batch; a file that cannot be parsed contributes nothing, a bad record only itself.

    XML is parsed with ``defusedxml``, which refuses documents that declare entities or reference
    external resources (no "billion laughs" expansion, no external entities).

Duplicates
    The same NCT id often appears in several files (snapshots saved years apart). One record per
    study is used: the most recently updated (``lastUpdatePostDate``), then v2 over v1 over XML,
    then the greatest source name — a choice that does not depend on the order the files are read.

Sites
    Facilities are matched as described in :mod:`sitegraph.loaders.normalize`. Location rows whose
    facility name is a placeholder for an anonymous site ("Research Site", "GSK Investigational
    Site", "Local Institution - 0058"; about a quarter of all rows) or missing, or that have no city
    or country, are skipped and counted in the log: "Research Site, Boston" of one sponsor is not
    one real place, and keying such rows by city would merge unrelated hospitals into a fake site.
    Their study is still loaded; only the site link (and its site investigators) is left out.
    A Site's ``name`` is its most common spelling without registry noise ("-Site Number:...",
    "/ID# ..."), ``aliases`` every raw spelling seen, and ``city``/``state``/``zip``/``country``/``lat``/
    ``lon`` the most common values (``country`` canonical, e.g. "South Korea"). A site already in the
    store keeps its stored values; only new aliases are added. ``PARTICIPATES_IN`` carries only the
    location's ``status`` (the most active one if a study lists the same site twice).

Studies
    ``phase`` as in v2 (``"PHASE1/PHASE2"``, ``"NA"``, ``"EARLY_PHASE1"``), ``overall_status`` and
    ``study_type`` in upper snake case (``"ACTIVE_NOT_RECRUITING"``; "Unknown status" -> ``"UNKNOWN"``),
    dates as ISO ``YYYY-MM`` or ``YYYY-MM-DD``, ``enrollment`` an int, ``source_format`` ``v2``/``v1``/
    ``xml``. Fields a record does not have are left out, not set to null.

People
    Site investigators (location contacts with a principal/sub-investigator role) get ``WORKS_AT`` the
    site and ``INVESTIGATOR_ON`` the study with the site's id; plain contacts are not investigators.
    Overall officials get ``INVESTIGATOR_ON`` with ``site_id ''`` and, when their affiliation has the
    same normalised name as one of the study's sites, ``WORKS_AT`` that site; their affiliation strings
    are kept in ``affiliations``. Boilerplate officials ("Medical Director", "Pfizer CT.gov Call
    Center", ...) are dropped (see ``parse_person``).
"""

from __future__ import annotations

import io
import json
import logging
import re
import xml.etree.ElementTree as ET
import zipfile
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as parse_xml

from sitegraph.errors import Problem
from sitegraph.graph.store import GraphBatch
from sitegraph.loaders.normalize import (
    FacilityKey,
    SiteMatcher,
    canonical_country,
    clean_text,
    condition_id,
    display_facility,
    fold,
    is_org_like,
    is_placeholder_facility,
    normalize_facility,
    parse_person,
    sort_degrees,
    sponsor_id,
)

log = logging.getLogger(__name__)

DEMO_CTGOV_DIR = Path(__file__).parent / "demo_data" / "ctgov"
"""A small, connected subset of real records shipped with the package (see its SOURCES.md)."""

MAX_PROBLEMS = 200
SUFFIXES = (".json", ".xml", ".zip")
MAX_MEMBER_BYTES = 512 * 1024 * 1024
MAX_ZIP_DEPTH = 3
_NCT_ID = re.compile(r"NCT\d{8}")
_FORMAT_RANK = {"v2": 3, "v1": 2, "xml": 1}
SITE_ROLES = ("PRINCIPAL_INVESTIGATOR", "SUB_INVESTIGATOR")
_ROLE_RANK = {"PRINCIPAL_INVESTIGATOR": 0, "SUB_INVESTIGATOR": 1, "STUDY_CHAIR": 2, "STUDY_DIRECTOR": 3}
_STATUS_ORDER = (
    "RECRUITING NOT_YET_RECRUITING ENROLLING_BY_INVITATION ACTIVE_NOT_RECRUITING AVAILABLE TEMPORARILY_NOT_AVAILABLE SUSPENDED "
    "COMPLETED TERMINATED WITHDRAWN"
)
_STATUS_RANK = {status: rank for rank, status in enumerate(_STATUS_ORDER.split())}


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


@dataclass
class LoadResult:
    """What :func:`read_ctgov` read."""

    batch: GraphBatch  # everything valid that was read
    problems: list[Problem]  # every problem found (capped at 200, plus a final 'N more' problem)
    files: int  # files read (zip members count individually)
    studies: int  # distinct NCT ids in the batch
    skipped: int  # records skipped because invalid


def iter_files(paths: Iterable[Path | str]) -> list[Path]:
    """The files to read: folders expanded recursively (sorted, ``.json .xml .zip``, hidden files skipped).

    Paths naming a file are kept whatever their extension (the content decides the format); paths
    that do not exist are kept too, so that :func:`read_ctgov` reports them.
    """
    out: list[Path] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        found = _expand_dir(path) if path.is_dir() else [path]
        for item in found:
            key = item.resolve() if item.exists() else item
            if key not in seen:
                seen.add(key)
                out.append(item)
    return out


def _expand_dir(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in SUFFIXES and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def read_ctgov(
    paths: Sequence[Path],
    *,
    existing_sites: Iterable[dict[str, Any]] = (),
    progress: Callable[[int], None] | None = None,
) -> LoadResult:
    """Read ClinicalTrials.gov records into a batch; never raises for bad input (see the module docstring).

    ``existing_sites`` are the Site nodes already in the store (dicts with ``id``, ``name``, ``city``,
    ``state``, ``country``, ``aliases``) so that facilities match the sites of earlier loads.
    ``progress`` is called with 1 after each file of :func:`iter_files`.
    """
    reader = _Reader()
    for path in iter_files(paths):
        reader.read_path(path)
        if progress is not None:
            progress(1)
    batch = _GraphBuilder(existing_sites).build(reader.records)
    studies = len(batch.nodes.get("Study", {}))
    log.info(
        "read %d file(s): %d valid record(s) of %d stud(ies), %d skipped, %d problem(s)",
        reader.files,
        len(reader.records),
        studies,
        reader.skipped,
        len(reader.problems),
    )
    return LoadResult(batch, _cap(reader.problems), reader.files, studies, reader.skipped)


def _cap(problems: list[Problem]) -> list[Problem]:
    if len(problems) <= MAX_PROBLEMS:
        return list(problems)
    more = len(problems) - MAX_PROBLEMS
    return [*problems[:MAX_PROBLEMS], Problem(source=problems[MAX_PROBLEMS].source, message=f"... and {more} more problem(s)")]


# --------------------------------------------------------------------------------------------
# Intermediate model
# --------------------------------------------------------------------------------------------


@dataclass
class PersonRef:
    """A name with a role (site investigator or overall official)."""

    name: str
    role: str | None
    affiliation: str | None = None


@dataclass
class LocationRow:
    """One location row of a study."""

    facility: str | None
    city: str | None
    state: str | None
    zip: str | None
    country: str | None
    status: str | None
    lat: float | None = None
    lon: float | None = None
    investigators: list[PersonRef] = field(default_factory=list)


@dataclass
class SponsorRef:
    """A lead sponsor or collaborator."""

    name: str
    agency_class: str | None
    role: str  # "lead" | "collaborator"


@dataclass
class StudyRecord:
    """One valid study record, normalised, before it becomes nodes and relationships."""

    nct_id: str
    source: str
    source_format: str
    line: int | None
    props: dict[str, Any]
    last_update: str = ""
    sponsors: list[SponsorRef] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)
    locations: list[LocationRow] = field(default_factory=list)
    officials: list[PersonRef] = field(default_factory=list)

    def priority(self) -> tuple[str, int, str, int]:
        return (self.last_update, _FORMAT_RANK[self.source_format], self.source, -(self.line or 0))


# --------------------------------------------------------------------------------------------
# Field normalisation, collecting problems
# --------------------------------------------------------------------------------------------


def _upper_snake(text: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", fold(text).upper()).strip("_")


def norm_status(value: Any) -> str | None:
    """``"Active, not recruiting"`` -> ``"ACTIVE_NOT_RECRUITING"``; ``"Unknown status"`` -> ``"UNKNOWN"``."""
    text = clean_text(value)
    if text is None:
        return None
    status = _upper_snake(text)
    return "UNKNOWN" if status == "UNKNOWN_STATUS" else status or None


def norm_role(value: Any) -> str | None:
    """``"Sub-Investigator"`` -> ``"SUB_INVESTIGATOR"``."""
    text = clean_text(value)
    return _upper_snake(text) or None if text else None


def norm_phase(values: Iterable[Any]) -> str | None:
    """``["Phase 1", "Phase 2"]`` / ``"Phase 1/Phase 2"`` / ``["PHASE1", "PHASE2"]`` -> ``"PHASE1/PHASE2"``; N/A -> ``"NA"``."""
    phases: list[str] = []
    for value in values:
        text = clean_text(value)
        if text is None:
            continue
        parts = [text] if fold(text) in ("n/a", "na") else text.split("/")
        for part in parts:
            key = re.sub(r"[^a-z0-9]", "", fold(part))
            if key in ("na", "notapplicable", ""):
                phase = "NA"
            elif key.startswith("earlyphase"):
                phase = "EARLY_PHASE" + key.removeprefix("earlyphase")
            else:
                phase = key.upper()
            if phase not in phases:
                phases.append(phase)
    return "/".join(phases) or None


def norm_study_type(value: Any) -> str | None:
    text = clean_text(value)
    if text is None:
        return None
    kind = _upper_snake(text)
    return None if kind in ("N_A", "NA") else kind


_DATE_FORMATS = (("%B %d, %Y", "%Y-%m-%d"), ("%B %Y", "%Y-%m"), ("%b %d, %Y", "%Y-%m-%d"), ("%b %Y", "%Y-%m"))


def parse_date(text: str) -> str | None:
    """``"2006-11"``, ``"July 2001"``, ``"November 27, 2017"`` -> ISO ``"YYYY-MM"``/``"YYYY-MM-DD"``; None if unparseable."""
    text = " ".join(text.split())
    iso = re.fullmatch(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?", text)
    if iso:
        try:
            datetime(int(iso[1]), int(iso[2] or 1), int(iso[3] or 1))
        except ValueError:
            return None
        return text
    for fmt, out in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).strftime(out)
        except ValueError:
            continue
    return None


class _Fields:
    """Reads typed values out of one record, remembering what was wrong and where."""

    def __init__(self, source: str, line: int | None, base: str) -> None:
        self.source = source
        self.line = line
        self.base = base
        self.problems: list[Problem] = []

    def path(self, name: str) -> str:
        return f"{self.base}.{name}" if self.base else name

    def problem(self, message: str, name: str) -> None:
        self.problems.append(Problem(self.source, message, self.line, self.path(name)))

    def nct_id(self, value: Any, name: str) -> str | None:
        text = clean_text(value)
        if text is None:
            self.problem("study has no NCT id", name)
            return None
        if not _NCT_ID.fullmatch(text):
            self.problem(f"NCT id {text!r} is not 'NCT' followed by 8 digits", name)
            return None
        return text

    def date(self, value: Any, name: str) -> str | None:
        text = clean_text(value)
        if text is None:
            return None
        parsed = parse_date(text)
        if parsed is None:
            self.problem(f"unrecognised date {text!r}", name)
        return parsed

    def integer(self, value: Any, name: str) -> int | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, bool):
            number = None
        elif isinstance(value, int):
            number = value
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        elif isinstance(value, str) and value.strip().isdigit():
            number = int(value.strip())
        else:
            number = None
        if number is None or number < 0:
            self.problem(f"{value!r} is not a whole number", name)
            return None
        return number

    def coordinate(self, value: Any, name: str, limit: float) -> float | None:
        if value is None:
            return None
        try:
            number = float(value) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            number = None
        if number is None or not -limit <= number <= limit:
            self.problem(f"{value!r} is not a valid coordinate", name)
            return None
        return number


def _get(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in _items(value) if isinstance(v, dict)]


def _strings(value: Any) -> list[str]:
    return [t for v in _items(value) if (t := clean_text(v)) is not None and not isinstance(v, (dict, list))]


# --------------------------------------------------------------------------------------------
# v2 JSON
# --------------------------------------------------------------------------------------------


def _from_v2(study: dict[str, Any], f: _Fields) -> StudyRecord | None:
    ps = study.get("protocolSection")
    if not isinstance(ps, dict):
        f.problem("protocolSection is not an object", "protocolSection")
        return None
    ident, status, design = (_get(ps, m) or {} for m in ("identificationModule", "statusModule", "designModule"))
    nct = f.nct_id(_get(ident, "nctId"), "protocolSection.identificationModule.nctId")
    props = {
        "title": clean_text(_get(ident, "briefTitle")),
        "official_title": clean_text(_get(ident, "officialTitle")),
        "phase": norm_phase(_items(_get(design, "phases"))),
        "overall_status": norm_status(_get(status, "overallStatus")),
        "study_type": norm_study_type(_get(design, "studyType")),
        "start_date": f.date(_get(status, "startDateStruct", "date"), "protocolSection.statusModule.startDateStruct.date"),
        "completion_date": f.date(
            _get(status, "completionDateStruct", "date"), "protocolSection.statusModule.completionDateStruct.date"
        ),
        "enrollment": f.integer(_get(design, "enrollmentInfo", "count"), "protocolSection.designModule.enrollmentInfo.count"),
    }
    contacts = _get(ps, "contactsLocationsModule") or {}
    locations = [_v2_location(loc, i, f) for i, loc in enumerate(_dicts(_get(contacts, "locations")))]
    if nct is None or f.problems:
        return None
    return StudyRecord(
        nct_id=nct,
        source=f.source,
        source_format="v2",
        line=f.line,
        props=props,
        last_update=parse_date(clean_text(_get(status, "lastUpdatePostDateStruct", "date")) or "") or "",
        sponsors=_v2_sponsors(_get(ps, "sponsorCollaboratorsModule") or {}),
        conditions=_strings(_get(ps, "conditionsModule", "conditions")),
        locations=locations,
        officials=[
            PersonRef(name, norm_role(o.get("role")), clean_text(o.get("affiliation")))
            for o in _dicts(_get(contacts, "overallOfficials"))
            if (name := clean_text(o.get("name")))
        ],
    )


def _v2_sponsors(module: dict[str, Any]) -> list[SponsorRef]:
    out = []
    lead = _get(module, "leadSponsor")
    if (name := clean_text(_get(lead, "name"))) is not None:
        out.append(SponsorRef(name, norm_role(_get(lead, "class")), "lead"))
    for collab in _dicts(_get(module, "collaborators")):
        if (name := clean_text(collab.get("name"))) is not None:
            out.append(SponsorRef(name, norm_role(collab.get("class")), "collaborator"))
    return out


def _v2_location(loc: dict[str, Any], i: int, f: _Fields) -> LocationRow:
    where = f"protocolSection.contactsLocationsModule.locations[{i}].geoPoint"
    return LocationRow(
        facility=clean_text(loc.get("facility")),
        city=clean_text(loc.get("city")),
        state=clean_text(loc.get("state")),
        zip=clean_text(loc.get("zip")),
        country=clean_text(loc.get("country")),
        status=norm_status(loc.get("status")),
        lat=f.coordinate(_get(loc, "geoPoint", "lat"), where + ".lat", 90),
        lon=f.coordinate(_get(loc, "geoPoint", "lon"), where + ".lon", 180),
        investigators=[
            PersonRef(name, norm_role(c.get("role"))) for c in _dicts(loc.get("contacts")) if (name := clean_text(c.get("name")))
        ],
    )


# --------------------------------------------------------------------------------------------
# v1 JSON
# --------------------------------------------------------------------------------------------


_V1_STATUS = "ProtocolSection.StatusModule."


def _from_v1(study: dict[str, Any], f: _Fields) -> StudyRecord | None:
    ps = study.get("ProtocolSection")
    if not isinstance(ps, dict):
        f.problem("ProtocolSection is not an object", "ProtocolSection")
        return None
    ident, status, design = (_get(ps, m) or {} for m in ("IdentificationModule", "StatusModule", "DesignModule"))
    nct = f.nct_id(_get(ident, "NCTId"), "ProtocolSection.IdentificationModule.NCTId")
    props = {
        "title": clean_text(_get(ident, "BriefTitle")),
        "official_title": clean_text(_get(ident, "OfficialTitle")),
        "phase": norm_phase(_items(_get(design, "PhaseList", "Phase"))),
        "overall_status": norm_status(_get(status, "OverallStatus")),
        "study_type": norm_study_type(_get(design, "StudyType")),
        "start_date": f.date(_get(status, "StartDateStruct", "StartDate"), _V1_STATUS + "StartDateStruct.StartDate"),
        "completion_date": f.date(
            _get(status, "CompletionDateStruct", "CompletionDate"), _V1_STATUS + "CompletionDateStruct.CompletionDate"
        ),
        "enrollment": f.integer(
            _get(design, "EnrollmentInfo", "EnrollmentCount"), "ProtocolSection.DesignModule.EnrollmentInfo.EnrollmentCount"
        ),
    }
    contacts = _get(ps, "ContactsLocationsModule") or {}
    if nct is None or f.problems:
        return None
    return StudyRecord(
        nct_id=nct,
        source=f.source,
        source_format="v1",
        line=f.line,
        props=props,
        last_update=parse_date(clean_text(_get(status, "LastUpdatePostDateStruct", "LastUpdatePostDate")) or "") or "",
        sponsors=_v1_sponsors(_get(ps, "SponsorCollaboratorsModule") or {}),
        conditions=_strings(_get(ps, "ConditionsModule", "ConditionList", "Condition")),
        locations=[_v1_location(loc) for loc in _dicts(_get(contacts, "LocationList", "Location"))],
        officials=[
            PersonRef(name, norm_role(o.get("OverallOfficialRole")), clean_text(o.get("OverallOfficialAffiliation")))
            for o in _dicts(_get(contacts, "OverallOfficialList", "OverallOfficial"))
            if (name := clean_text(o.get("OverallOfficialName")))
        ],
    )


def _v1_sponsors(module: dict[str, Any]) -> list[SponsorRef]:
    out = []
    if (name := clean_text(_get(module, "LeadSponsor", "LeadSponsorName"))) is not None:
        out.append(SponsorRef(name, norm_role(_get(module, "LeadSponsor", "LeadSponsorClass")), "lead"))
    for collab in _dicts(_get(module, "CollaboratorList", "Collaborator")):
        if (name := clean_text(collab.get("CollaboratorName"))) is not None:
            out.append(SponsorRef(name, norm_role(collab.get("CollaboratorClass")), "collaborator"))
    return out


def _v1_location(loc: dict[str, Any]) -> LocationRow:
    return LocationRow(
        facility=clean_text(loc.get("LocationFacility")),
        city=clean_text(loc.get("LocationCity")),
        state=clean_text(loc.get("LocationState")),
        zip=clean_text(loc.get("LocationZip")),
        country=clean_text(loc.get("LocationCountry")),
        status=norm_status(loc.get("LocationStatus")),
        investigators=[
            PersonRef(name, norm_role(c.get("LocationContactRole")))
            for c in _dicts(_get(loc, "LocationContactList", "LocationContact"))
            if (name := clean_text(c.get("LocationContactName")))
        ],
    )


# --------------------------------------------------------------------------------------------
# Classic XML
# --------------------------------------------------------------------------------------------


def _text(elem: ET.Element, path: str) -> str | None:
    return clean_text(elem.findtext(path))


def _xml_person(elem: ET.Element) -> str | None:
    """``first_name``/``middle_name``/``last_name`` (usually all in last_name) plus ``degrees``."""
    parts = [p for tag in ("first_name", "middle_name", "last_name") if (p := _text(elem, tag))]
    if not parts:
        return None
    degrees = _text(elem, "degrees")
    return " ".join(parts) + (f", {degrees}" if degrees else "")


def _from_xml(root: ET.Element, f: _Fields) -> StudyRecord | None:
    nct = f.nct_id(root.findtext("id_info/nct_id"), "id_info/nct_id")
    props = {
        "title": _text(root, "brief_title"),
        "official_title": _text(root, "official_title"),
        "phase": norm_phase([root.findtext("phase")]),
        "overall_status": norm_status(root.findtext("overall_status")),
        "study_type": norm_study_type(root.findtext("study_type")),
        "start_date": f.date(root.findtext("start_date"), "start_date"),
        "completion_date": f.date(root.findtext("completion_date"), "completion_date"),
        "enrollment": f.integer(root.findtext("enrollment"), "enrollment"),
    }
    if nct is None or f.problems:
        return None
    updated = _text(root, "last_update_posted") or _text(root, "lastchanged_date") or ""
    return StudyRecord(
        nct_id=nct,
        source=f.source,
        source_format="xml",
        line=f.line,
        props=props,
        last_update=parse_date(updated) or "",
        sponsors=_xml_sponsors(root),
        conditions=[t for c in root.findall("condition") if (t := clean_text(c.text))],
        locations=[_xml_location(loc) for loc in root.findall("location")],
        officials=[
            PersonRef(name, norm_role(o.findtext("role")), _text(o, "affiliation"))
            for o in root.findall("overall_official")
            if (name := _xml_person(o))
        ],
    )


def _xml_sponsors(root: ET.Element) -> list[SponsorRef]:
    out = []
    for tag, role in (("sponsors/lead_sponsor", "lead"), ("sponsors/collaborator", "collaborator")):
        for elem in root.findall(tag):
            if (name := _text(elem, "agency")) is not None:
                agency_class = norm_role(elem.findtext("agency_class"))
                out.append(SponsorRef(name, "FED" if agency_class == "U_S_FED" else agency_class, role))
    return out


def _xml_location(loc: ET.Element) -> LocationRow:
    return LocationRow(
        facility=_text(loc, "facility/name"),
        city=_text(loc, "facility/address/city"),
        state=_text(loc, "facility/address/state"),
        zip=_text(loc, "facility/address/zip"),
        country=_text(loc, "facility/address/country"),
        status=norm_status(loc.findtext("status")),
        investigators=[
            PersonRef(name, norm_role(inv.findtext("role"))) for inv in loc.findall("investigator") if (name := _xml_person(inv))
        ],
    )


# --------------------------------------------------------------------------------------------
# Reading files
# --------------------------------------------------------------------------------------------

_XML_DECL_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._\-]+)["']""")


def _line_at(data: bytes | str, offset: int) -> int:
    newline: Any = b"\n" if isinstance(data, bytes) else "\n"
    return data.count(newline, 0, offset) + 1


def _decode_array(text: str) -> Iterator[tuple[int, Any]]:
    """Decode a top-level JSON array element by element, yielding (line of the element, element)."""
    decoder = json.JSONDecoder()
    ws = re.compile(r"[ \t\n\r]*")

    def skip(pos: int) -> int:
        match = ws.match(text, pos)
        return match.end() if match else pos

    pos = skip(skip(0) + 1)  # past '['
    line, counted = 1, 0
    if text[pos : pos + 1] == "]":
        pos = skip(pos + 1)
    else:
        while True:
            line += text.count("\n", counted, pos)
            counted = pos
            value, end = decoder.raw_decode(text, pos)
            yield line, value
            pos = skip(end)
            char = text[pos : pos + 1]
            if char == ",":
                pos = skip(pos + 1)
                continue
            if char == "]":
                pos = skip(pos + 1)
                break
            raise json.JSONDecodeError("Expecting ',' delimiter" if char else "Unterminated array", text, pos)
    if pos != len(text):
        raise json.JSONDecodeError("Extra data", text, pos)


class _Reader:
    """Reads files and archives into valid records and problems."""

    def __init__(self) -> None:
        self.records: list[StudyRecord] = []
        self.problems: list[Problem] = []
        self.files = 0
        self.skipped = 0

    def problem(self, source: str, message: str, line: int | None = None, field: str | None = None) -> None:
        self.problems.append(Problem(source, message, line, field))

    # -- containers --------------------------------------------------------------------------
    def read_path(self, path: Path) -> None:
        source = str(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            self.problem(source, "file not found")
            return
        except OSError as exc:
            self.problem(source, f"cannot read file: {exc.strerror or exc}")
            return
        self.read_data(source, data, depth=0)

    def read_data(self, source: str, data: bytes, depth: int) -> None:
        head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:4]
        if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
            self.read_zip(source, data, depth)
            return
        self.files += 1
        if not head:
            self.problem(source, "empty file")
        elif head.startswith(b"<"):
            self.read_xml(source, data)
        elif head[:1] in (b"{", b"["):
            self.read_json(source, data)
        elif source.lower().endswith(".zip"):
            self.problem(source, "not a valid zip archive")
        elif (text := self.decode(source, data)) is not None:
            preview = text.strip()[:30]
            self.problem(source, f"unknown format: not ClinicalTrials.gov JSON, XML or zip (starts with {preview!r})", line=1)

    def read_zip(self, source: str, data: bytes, depth: int) -> None:
        if depth >= MAX_ZIP_DEPTH:
            self.files += 1
            self.problem(source, f"zip archives nested more than {MAX_ZIP_DEPTH} deep")
            return
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
            members = sorted(archive.infolist(), key=lambda info: info.filename)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
            self.files += 1
            self.problem(source, f"not a valid zip archive: {exc}")
            return
        with archive:
            for info in members:
                if self._wanted_member(info):
                    self.read_member(source, archive, info, depth)

    @staticmethod
    def _wanted_member(info: zipfile.ZipInfo) -> bool:
        name = info.filename
        base = name.rstrip("/").rsplit("/", 1)[-1]
        if info.is_dir() or name.startswith("__MACOSX/") or base.startswith("."):
            return False
        suffix = base.rsplit(".", 1)[-1].lower() if "." in base else ""
        if suffix and "." + suffix not in SUFFIXES:
            log.debug("skipping archive member %s (not .json, .xml or .zip)", name)
            return False
        return True

    def read_member(self, source: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo, depth: int) -> None:
        member = f"{source}!{info.filename}"
        if info.file_size > MAX_MEMBER_BYTES:
            self.files += 1
            self.problem(member, f"archive member too large ({info.file_size} bytes)")
            return
        try:
            data = archive.read(info)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, RuntimeError, NotImplementedError) as exc:
            self.files += 1
            self.problem(member, f"cannot read archive member: {exc}")
            return
        self.read_data(member, data, depth + 1)

    # -- text ---------------------------------------------------------------------------------
    def decode(self, source: str, data: bytes, encoding: str = "utf-8") -> str | None:
        try:
            return data.decode("utf-8-sig" if encoding == "utf-8" else encoding)
        except UnicodeDecodeError as exc:
            label = "UTF-8" if encoding == "utf-8" else encoding
            self.problem(
                source,
                f"bytes that are not {label} text (byte 0x{data[exc.start]:02x} at offset {exc.start})",
                line=_line_at(data, exc.start),
            )
            return None

    def read_json(self, source: str, data: bytes) -> None:
        text = self.decode(source, data)
        if text is None:
            return
        is_array = text.lstrip().startswith("[")
        try:
            document: Any = list(_decode_array(text)) if is_array else json.loads(text)
        except json.JSONDecodeError as exc:
            self.problem(source, f"malformed JSON: {exc.msg} (column {exc.colno})", line=exc.lineno)
            return
        except RecursionError:
            self.problem(source, "malformed JSON: nested too deeply")
            return
        if is_array:
            self.read_records(source, document, base="[{}]")  # (line, element) pairs
        else:
            self.read_json_object(source, document)

    def read_json_object(self, source: str, document: Any) -> None:
        if isinstance(document, dict) and "protocolSection" in document:
            self.read_records(source, [(None, document)], base="")
        elif isinstance(document, dict) and isinstance(document.get("studies"), list):
            self.read_records(source, [(None, s) for s in document["studies"]], base="studies[{}]")
        elif isinstance(_get(document, "FullStudiesResponse", "FullStudies"), list):
            studies = [(None, _get(s, "Study") or s) for s in document["FullStudiesResponse"]["FullStudies"]]
            self.read_records(source, studies, base="FullStudiesResponse.FullStudies[{}].Study")
        elif isinstance(document, dict) and isinstance(document.get("Study"), dict):
            self.read_records(source, [(None, document["Study"])], base="Study")
        elif isinstance(document, dict) and "FullStudiesResponse" in document:
            self.problem(source, "v1 JSON without FullStudiesResponse.FullStudies", field="FullStudiesResponse")
        else:
            kind = "object" if isinstance(document, dict) else type(document).__name__
            self.problem(source, f"unknown format: a JSON {kind} that is not a ClinicalTrials.gov study, page or v1 response")

    def read_records(self, source: str, elements: Iterable[tuple[int | None, Any]], base: str) -> None:
        for index, (line, element) in enumerate(elements):
            fields = _Fields(source, line, base.format(index) if "{}" in base else base)
            record = self.record_from_json(element, fields)
            self.keep(record, fields)

    @staticmethod
    def record_from_json(element: Any, fields: _Fields) -> StudyRecord | None:
        if isinstance(element, dict) and "protocolSection" in element:
            return _from_v2(element, fields)
        if isinstance(element, dict) and isinstance(element.get("Study"), dict):
            fields.base = fields.path("Study")
            return _from_v1(element["Study"], fields)
        if isinstance(element, dict) and "ProtocolSection" in element:
            return _from_v1(element, fields)
        fields.problem("record is not a ClinicalTrials.gov study (no protocolSection)", "protocolSection")
        return None

    def keep(self, record: StudyRecord | None, fields: _Fields) -> None:
        if record is not None and not fields.problems:
            self.records.append(record)
            return
        self.skipped += 1
        fallback = Problem(fields.source, "invalid study record", fields.line, fields.base or None)
        self.problems.extend(fields.problems or [fallback])

    def read_xml(self, source: str, data: bytes) -> None:
        declared = _XML_DECL_ENCODING.match(data)
        encoding = declared.group(1).decode("ascii").lower().replace("_", "-") if declared else "utf-8"
        if encoding in ("utf8", "utf-8"):
            encoding = "utf-8"
        try:
            text = self.decode(source, data, encoding)
        except LookupError:
            self.problem(source, f"unknown XML encoding {encoding!r}", line=1)
            return
        if text is None:
            return
        try:
            root = parse_xml(text)
        except ET.ParseError as exc:
            self.problem(source, f"malformed XML: {exc}", line=exc.position[0])
            return
        except DefusedXmlException as exc:
            message = "XML that declares entities or references external resources is not accepted"
            self.problem(source, f"{message} ({type(exc).__name__})")
            return
        if root.tag == "clinical_study":
            studies, base = [root], ""
        elif children := root.findall("clinical_study"):
            studies, base = children, "clinical_study[{}]"
        else:
            self.problem(source, f"unknown format: XML root <{root.tag}> is not <clinical_study>", line=1)
            return
        for index, study in enumerate(studies):
            fields = _Fields(source, None, base.format(index) if base else "")
            self.keep(_from_xml(study, fields), fields)


# --------------------------------------------------------------------------------------------
# Building the graph
# --------------------------------------------------------------------------------------------


def _most_common(counter: Counter[Any]) -> Any:
    """The most frequent value; ties broken by the smallest value (deterministic)."""
    return min(counter.items(), key=lambda kv: (-kv[1], kv[0]))[0] if counter else None


@dataclass
class _SiteAgg:
    names: Counter[str] = field(default_factory=Counter)
    displays: Counter[str] = field(default_factory=Counter)
    cities: Counter[str] = field(default_factory=Counter)
    states: Counter[str] = field(default_factory=Counter)
    zips: Counter[str] = field(default_factory=Counter)
    countries: Counter[str] = field(default_factory=Counter)
    coords: Counter[tuple[float, float]] = field(default_factory=Counter)


@dataclass
class _PersonAgg:
    names: Counter[str] = field(default_factory=Counter)
    degrees: set[str] = field(default_factory=set)
    affiliations: set[str] = field(default_factory=set)


class _GraphBuilder:
    """Turns valid records into nodes and relationships, deterministically."""

    def __init__(self, existing_sites: Iterable[Mapping[str, Any]]) -> None:
        self.matcher = SiteMatcher(existing_sites)
        self.batch = GraphBatch()
        self.sites: dict[str, _SiteAgg] = defaultdict(_SiteAgg)
        self.people: dict[str, _PersonAgg] = defaultdict(_PersonAgg)
        self.sponsors: dict[str, tuple[Counter[str], Counter[str]]] = {}
        self.conditions: dict[str, Counter[str]] = defaultdict(Counter)
        self.investigator_on: dict[tuple[str, str, str], str | None] = {}
        self.works_at: set[tuple[str, str]] = set()
        self.counts: Counter[str] = Counter()

    def build(self, records: list[StudyRecord]) -> GraphBatch:
        studies = self._primary(records)
        keys = self._register_locations(studies)
        site_of = self.matcher.resolve()
        for study in studies:
            self._add_study(study, [site_of.get(k) if k else None for k in keys[study.nct_id]])
        self._emit_aggregates()
        self._log_summary(len(records), len(studies))
        return self.batch

    def _primary(self, records: list[StudyRecord]) -> list[StudyRecord]:
        best: dict[str, StudyRecord] = {}
        for record in records:
            current = best.get(record.nct_id)
            if current is None or record.priority() > current.priority():
                best[record.nct_id] = record
        return [best[nct] for nct in sorted(best)]

    def _register_locations(self, studies: list[StudyRecord]) -> dict[str, list[FacilityKey | None]]:
        keys: dict[str, list[FacilityKey | None]] = {}
        for study in studies:
            row_keys: list[FacilityKey | None] = []
            for loc in study.locations:
                key = None
                if loc.facility and not is_placeholder_facility(loc.facility, normalize_facility(loc.facility)):
                    key = self.matcher.add(loc.facility, loc.city, loc.state, loc.country)
                    self.counts["no city/country"] += key is None
                else:
                    self.counts["placeholder facility"] += 1
                row_keys.append(key)
            keys[study.nct_id] = row_keys
        return keys

    # -- one study ----------------------------------------------------------------------------
    def _add_study(self, study: StudyRecord, site_ids: list[str | None]) -> None:
        nct = study.nct_id
        props = {k: v for k, v in study.props.items() if v is not None}
        self.batch.add_node("Study", nct, {**props, "source_format": study.source_format})
        org_names = [s.name for s in study.sponsors if is_org_like(s.name) and s.agency_class != "INDIV"]
        self._add_sponsors(study)
        for name in dict.fromkeys(study.conditions):
            self.conditions[condition_id(name)][name] += 1
            self.batch.add_rel("STUDIES", "Study", nct, "Condition", condition_id(name))
        statuses: dict[str, list[str]] = {}
        for loc, site_id in zip(study.locations, site_ids, strict=True):
            site_investigators = [p for p in loc.investigators if p.role in SITE_ROLES]
            if site_id is None:
                self.counts["investigators at skipped rows"] += len(site_investigators)
                continue
            self._collect_site(site_id, loc)
            statuses.setdefault(site_id, []).extend([loc.status] if loc.status else [])
            for person in site_investigators:
                self._add_person(person, nct, site_id, org_names)
        for site_id, values in sorted(statuses.items()):
            status = min(values, key=lambda s: (_STATUS_RANK.get(s, len(_STATUS_RANK)), s)) if values else None
            self.batch.add_rel("PARTICIPATES_IN", "Site", site_id, "Study", nct, {"status": status} if status else {})
        by_name = {name: sid for sid in sorted(statuses) for name in self.matcher.group_names.get(sid, ())}
        for person in study.officials:
            affiliation_site = by_name.get(normalize_facility(person.affiliation)) if person.affiliation else None
            self._add_person(person, nct, "", org_names, works_at=affiliation_site)

    def _add_sponsors(self, study: StudyRecord) -> None:
        roles: dict[str, str] = {}
        for sponsor in study.sponsors:
            key = sponsor_id(sponsor.name)
            names, classes = self.sponsors.setdefault(key, (Counter(), Counter()))
            names[sponsor.name] += 1
            if sponsor.agency_class:
                classes[sponsor.agency_class] += 1
            if roles.get(key) != "lead":
                roles[key] = sponsor.role
        for key, role in sorted(roles.items()):
            self.batch.add_rel("SPONSORED_BY", "Study", study.nct_id, "Sponsor", key, {"role": role})

    def _collect_site(self, site_id: str, loc: LocationRow) -> None:
        agg = self.sites[site_id]
        assert loc.facility is not None
        agg.names[loc.facility] += 1
        agg.displays[display_facility(loc.facility)] += 1
        for counter, value in (
            (agg.cities, loc.city),
            (agg.states, loc.state),
            (agg.zips, loc.zip),
            (agg.countries, canonical_country(loc.country)),
        ):
            if value:
                counter[value] += 1
        if loc.lat is not None and loc.lon is not None:
            agg.coords[(loc.lat, loc.lon)] += 1

    def _add_person(self, ref: PersonRef, nct: str, site_id: str, org_names: list[str], works_at: str | None = None) -> None:
        person = parse_person(ref.name, org_names=org_names)
        if person is None:
            self.counts["not a person"] += 1
            log.debug("not a person: %r (%s)", ref.name, nct)
            return
        agg = self.people[person.key]
        agg.names[person.display] += 1
        agg.degrees.update(person.degrees)
        if ref.affiliation:
            agg.affiliations.add(ref.affiliation)
        key = (person.key, nct, site_id)
        if key not in self.investigator_on or _role_rank(ref.role) < _role_rank(self.investigator_on[key]):
            self.investigator_on[key] = ref.role
        target = site_id or works_at
        if target:
            self.works_at.add((person.key, target))

    # -- aggregated nodes and relationships -----------------------------------------------------
    def _emit_aggregates(self) -> None:
        for key in sorted(self.sponsors):
            names, classes = self.sponsors[key]
            self.batch.add_node("Sponsor", key, _drop_none({"name": _most_common(names), "agency_class": _most_common(classes)}))
        for key in sorted(self.conditions):
            self.batch.add_node("Condition", key, {"name": _most_common(self.conditions[key])})
        for site_id in sorted(self.sites):
            self.batch.add_node("Site", site_id, self._site_props(site_id))
        for key in sorted(self.people):
            agg = self.people[key]
            self.batch.add_node(
                "Investigator",
                key,
                {
                    "name": _most_common(agg.names),
                    "degrees": sort_degrees(agg.degrees),
                    "affiliations": sorted(agg.affiliations),
                },
            )
        for (person, nct, site_id), role in sorted(self.investigator_on.items()):
            props = _drop_none({"role": role, "site_id": site_id})
            self.batch.add_rel("INVESTIGATOR_ON", "Investigator", person, "Study", nct, props)
        for person, site_id in sorted(self.works_at):
            self.batch.add_rel("WORKS_AT", "Investigator", person, "Site", site_id)

    def _site_props(self, site_id: str) -> dict[str, Any]:
        agg = self.sites[site_id]
        coords = _most_common(agg.coords)
        props: dict[str, Any] = {
            "name": _most_common(agg.displays),
            "city": _most_common(agg.cities),
            "state": _most_common(agg.states),
            "zip": _most_common(agg.zips),
            "country": _most_common(agg.countries),
            "lat": coords[0] if coords else None,
            "lon": coords[1] if coords else None,
        }
        existing = self.matcher.existing.get(site_id)
        aliases = set(agg.names)
        if existing is not None:
            for name, value in existing.items():
                if name in props and value not in (None, ""):
                    props[name] = value
            aliases |= {a for a in existing.get("aliases") or [] if isinstance(a, str)}
        props["aliases"] = sorted(aliases)
        return _drop_none(props)

    def _log_summary(self, records: int, studies: int) -> None:
        stats = self.matcher.stats
        log.info(
            "%d record(s) -> %d stud(ies) (%d older duplicate(s) ignored); location rows skipped: %d placeholder facility, "
            "%d without city/country (%d site investigator(s) with them); %d boilerplate official/investigator name(s) dropped",
            records,
            studies,
            records - studies,
            self.counts["placeholder facility"],
            self.counts["no city/country"],
            self.counts["investigators at skipped rows"],
            self.counts["not a person"],
        )
        log.info(
            "facility matching: %d spelling(s) -> %d site(s) (%d merged as reordered/typo, %d by containment, "
            "%d ambiguous left alone, %d matched existing sites)",
            stats.spellings,
            stats.sites,
            stats.reordered_or_typo,
            stats.contained,
            stats.ambiguous,
            stats.anchored,
        )


def _role_rank(role: str | None) -> tuple[int, str]:
    return (_ROLE_RANK.get(role or "", len(_ROLE_RANK)), role or "")


def _drop_none(props: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in props.items() if v is not None}
