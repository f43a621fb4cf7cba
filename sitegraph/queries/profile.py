"""Site 360 and investigator profiles: pure functions on a :class:`Snapshot`, returning pydantic models.

Used by the API (``GET /sites/{id}``, ``GET /investigators/{id}``) and the CLI. Everything is read
from the snapshot, so the embedded store and Neo4j give identical profiles; lists are sorted so the
same data always gives the same document.

KPIs come from the per-site study facts on ``PARTICIPATES_IN``:

- activation time: median (and mean) of ``activation_days`` over the site's studies;
- enrollment against target: ``sum(enrolled) / sum(target)`` over studies that have both;
- screen-failure rate: ``sum(screen_failures) / sum(screened)`` over studies that have both;
- open queries, contract revisions, surveys received: totals (contract revisions also as a mean);
- ethics approval: median of ``ethics_approval_days``.

Active barriers, the friction summary and note sentiment come from :mod:`sitegraph.queries.signals`
(recency- and severity-weighted barrier activity, measured from the end of the UTC day of the latest
interaction in the data, so a profile does not change with the wall clock); centrality from the properties that
``sitegraph analyze`` writes (:mod:`sitegraph.graph.analyze`).
"""

from __future__ import annotations

import contextlib
import json
import math
import statistics
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from sitegraph.errors import NotFoundError
from sitegraph.graph.analyze import MEASURES, PREFIX
from sitegraph.queries.models import BarrierActivity
from sitegraph.queries.signals import engagement_index, site_barrier_activity, site_friction_summary
from sitegraph.queries.snapshot import NodeId, Snapshot

RECENT_INTERACTIONS = 10
NOTE_EXCERPT = 280
MAX_BARRIERS = 20

# Node properties written by ``sitegraph analyze`` that profiles report as centrality.
CENTRALITY_PROPERTIES = frozenset(prefix + measure for prefix in PREFIX.values() for measure in MEASURES)


# --- models ----------------------------------------------------------------------------------------


class SiteIdentity(BaseModel):
    id: str = Field(examples=["site:massachusetts-general-hospital-boston-massachusetts-unitedstates"])
    name: str = Field(examples=["Massachusetts General Hospital"])
    aliases: list[str] = Field(default_factory=list)
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    country: str | None = None
    lat: float | None = None
    lon: float | None = None


class StudyRole(BaseModel):
    study_id: str
    role: str


class SiteInvestigator(BaseModel):
    """An investigator who works at the site, with the roles they hold on studies there."""

    id: str
    name: str
    roles: list[StudyRole] = Field(default_factory=list, description="Roles on studies at this site (or overall).")
    centrality: dict[str, float] = Field(default_factory=dict)
    interactions: int = Field(0, description="Interactions with this investigator at this site.")


class ConditionRef(BaseModel):
    id: str
    name: str | None = None
    therapeutic_area: str | None = None


class SiteStudyFacts(BaseModel):
    """Per-site facts of one study (from PARTICIPATES_IN), with the derived rates."""

    status: str | None = None
    activation_date: str | None = None
    activation_days: float | None = None
    enrolled: int | None = None
    target: int | None = None
    enrollment_vs_target: float | None = Field(None, description="enrolled / target.")
    screened: int | None = None
    screen_failures: int | None = None
    screen_failure_rate: float | None = Field(None, description="screen_failures / screened.")
    contract_revisions: int | None = None
    ethics_approval_days: float | None = None
    open_queries: int | None = None
    surveys_received: int | None = None


class SiteStudy(BaseModel):
    id: str = Field(examples=["NCT01234567"])
    title: str | None = None
    phase: str | None = None
    overall_status: str | None = None
    conditions: list[ConditionRef] = Field(default_factory=list)
    sponsors: list[str] = Field(default_factory=list, description="Sponsor names, lead first.")
    facts: SiteStudyFacts


class SiteKpis(BaseModel):
    """Site-level KPIs computed from the per-site study facts."""

    studies: int
    active_studies: int = Field(description="Studies recruiting or active at the site (per-site status, else the study's).")
    activation_days_median: float | None = None
    activation_days_mean: float | None = None
    enrolled: int | None = None
    target: int | None = None
    enrollment_vs_target: float | None = Field(None, description="Sum of enrolled over sum of target (studies with both).")
    screened: int | None = None
    screen_failures: int | None = None
    screen_failure_rate: float | None = Field(None, description="Sum of screen failures over sum screened (studies with both).")
    open_queries: int | None = None
    contract_revisions: int | None = None
    contract_revisions_mean: float | None = None
    ethics_approval_days_median: float | None = None
    surveys_received: int | None = None


class InteractionBrief(BaseModel):
    id: str
    occurred_at: str | None = None
    channel: str | None = None
    direction: str | None = None
    investigator_id: str | None = None
    note: str = Field("", description=f"The note, cut to {NOTE_EXCERPT} characters.")
    sentiment: float | None = None
    tags: list[str] = Field(default_factory=list, description="IRIs of barriers the interaction raised.")
    tactic_iri: str | None = None
    outcome: str | None = None


class InteractionSummary(BaseModel):
    total: int
    by_channel: dict[str, int] = Field(default_factory=dict)
    first_at: str | None = None
    last_at: str | None = None
    mean_sentiment: float | None = Field(None, description="Mean sentiment (-1..1) over all the site's interactions.")
    recent_mean_sentiment: float | None = Field(None, description=f"Mean sentiment over the {RECENT_INTERACTIONS} most recent.")
    recent: list[InteractionBrief] = Field(default_factory=list, description="Most recent first.")
    friction_summary: str = Field("", description="A short summary of recent friction at the site.")
    friction_trend: str = Field("none", description="rising, falling, stable or none (last 90 days against the 90 before).")


class Site360(BaseModel):
    """Everything known about one site."""

    site: SiteIdentity
    centrality: dict[str, float] = Field(
        default_factory=dict, description="Centrality properties written by `sitegraph analyze`."
    )
    kpis: SiteKpis
    investigators: list[SiteInvestigator] = Field(default_factory=list)
    studies: list[SiteStudy] = Field(default_factory=list)
    barriers: list[BarrierActivity] = Field(default_factory=list, description="Active barriers, most active first.")
    interactions: InteractionSummary
    data_version: int = Field(description="The store's data version this profile was computed at.")


class SiteRef(BaseModel):
    id: str
    name: str
    city: str | None = None
    country: str | None = None


class InvestigatorStudy(BaseModel):
    study_id: str
    title: str | None = None
    phase: str | None = None
    overall_status: str | None = None
    role: str
    site_id: str | None = Field(None, description="The site the role is at (None: overall role on the study).")


class InvestigatorProfile(BaseModel):
    id: str = Field(examples=["inv:alessandro-morabito"])
    name: str
    degrees: list[str] = Field(default_factory=list)
    affiliations: list[str] = Field(default_factory=list)
    sites: list[SiteRef] = Field(default_factory=list)
    studies: list[InvestigatorStudy] = Field(default_factory=list)
    centrality: dict[str, float] = Field(default_factory=dict)
    interactions: int = 0
    last_interaction_at: str | None = None
    data_version: int


# --- helpers ---------------------------------------------------------------------------------------


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            f = float(value)
            return f if math.isfinite(f) else None
    return None


def _int(value: Any) -> int | None:
    f = _num(value)
    return round(f) if f is not None else None


def as_str(value: Any) -> str | None:
    """A stored property as text (None stays None)."""
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def as_strs(value: Any) -> list[str]:
    """A stored property as a list of texts (a scalar becomes a one-item list)."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or den <= 0:
        return None
    return round(num / den, 4)


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def centrality_of(props: dict[str, Any]) -> dict[str, float]:
    """The centrality properties of a node (``pagerank``, ``degree``, ``collab_betweenness``...)."""
    out: dict[str, float] = {}
    for name in sorted(props):
        if name in CENTRALITY_PROPERTIES:
            value = _num(props[name])
            if value is not None:
                out[name] = value
    return out


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 timestamp as an aware datetime (naive ones are taken as UTC)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _time_key(value: Any) -> float:
    dt = parse_time(value)
    return dt.timestamp() if dt else float("-inf")


def _median(values: Iterable[float]) -> float | None:
    vals = list(values)
    return _round(float(statistics.median(vals))) if vals else None


def _mean(values: Iterable[float]) -> float | None:
    vals = list(values)
    return _round(statistics.fmean(vals)) if vals else None


def _concept_ref(snapshot: Snapshot, label: str, iri: str) -> tuple[str, str]:
    props = snapshot.node(label, iri) or {}
    compact = as_str(props.get("id")) or iri.rstrip("/").rsplit("/", 1)[-1]
    return compact, as_str(props.get("label")) or compact


# --- relationship rows (the order of Snapshot.out / Snapshot.into, without serialising every row) -------


def _ordered(rows: list[tuple[NodeId, dict[str, Any]]]) -> list[tuple[NodeId, dict[str, Any]]]:
    """Rows by node id, and rows of one node by the JSON of their properties: :meth:`Snapshot.out`'s order.

    The JSON is only built when a node has several rows (rare), so distinct nodes cost one sort by id.
    """
    rows.sort(key=lambda r: r[0])
    if any(rows[i][0] == rows[i + 1][0] for i in range(len(rows) - 1)):
        rows.sort(key=lambda r: (r[0], json.dumps(r[1], sort_keys=True, default=str)))
    return rows


def _out(snapshot: Snapshot, label: str, key: str, rel_type: str) -> list[tuple[NodeId, dict[str, Any]]]:
    """The same rows, in the same order, as ``snapshot.out(label, key, rel_type)``."""
    nid = (label, key)
    g = snapshot.graph
    if nid not in g:
        return []
    return _ordered([(v, d) for v, keyed in g._succ[nid].items() for ek, d in keyed.items() if ek[0] == rel_type])


def _into(snapshot: Snapshot, label: str, key: str, rel_type: str) -> list[tuple[NodeId, dict[str, Any]]]:
    """The same rows, in the same order, as ``snapshot.into(label, key, rel_type)``."""
    nid = (label, key)
    g = snapshot.graph
    if nid not in g:
        return []
    return _ordered([(u, d) for u, keyed in g._pred[nid].items() for ek, d in keyed.items() if ek[0] == rel_type])


# --- site 360 --------------------------------------------------------------------------------------


def study_facts(rel: dict[str, Any]) -> SiteStudyFacts:
    enrolled, target = _int(rel.get("enrolled")), _int(rel.get("target"))
    screened, failures = _int(rel.get("screened")), _int(rel.get("screen_failures"))
    return SiteStudyFacts(
        status=as_str(rel.get("status")),
        activation_date=as_str(rel.get("activation_date")),
        activation_days=_num(rel.get("activation_days")),
        enrolled=enrolled,
        target=target,
        enrollment_vs_target=_ratio(enrolled, target),
        screened=screened,
        screen_failures=failures,
        screen_failure_rate=_ratio(failures, screened),
        contract_revisions=_int(rel.get("contract_revisions")),
        ethics_approval_days=_num(rel.get("ethics_approval_days")),
        open_queries=_int(rel.get("open_queries")),
        surveys_received=_int(rel.get("surveys_received")),
    )


_ACTIVE_STATUSES = frozenset(
    {"recruiting", "active", "enrolling", "enrolling_by_invitation", "not_yet_recruiting", "active_not_recruiting"}
)


def _status_key(status: str | None) -> str:
    return (status or "").strip().lower().replace(",", "").replace("-", "_").replace(" ", "_")


def site_kpis(facts: list[SiteStudyFacts], overall_statuses: list[str | None] | None = None) -> SiteKpis:
    """KPIs over the site's studies. A study is active by its per-site status, else by its overall status."""

    def total(values: list[int | None]) -> int | None:
        known = [v for v in values if v is not None]
        return sum(known) if known else None

    both_enrol = [(f.enrolled, f.target) for f in facts if f.enrolled is not None and f.target]
    both_screen = [(f.screen_failures, f.screened) for f in facts if f.screen_failures is not None and f.screened]
    revisions = [f.contract_revisions for f in facts if f.contract_revisions is not None]
    activation = [f.activation_days for f in facts if f.activation_days is not None]
    overall = overall_statuses or [None] * len(facts)
    statuses = [_status_key(f.status or o) for f, o in zip(facts, overall, strict=True)]
    return SiteKpis(
        studies=len(facts),
        active_studies=sum(1 for s in statuses if s in _ACTIVE_STATUSES),
        activation_days_median=_median(activation),
        activation_days_mean=_mean(activation),
        enrolled=total([f.enrolled for f in facts]),
        target=total([f.target for f in facts]),
        enrollment_vs_target=_ratio(sum(e for e, _ in both_enrol), sum(t for _, t in both_enrol)) if both_enrol else None,
        screened=total([f.screened for f in facts]),
        screen_failures=total([f.screen_failures for f in facts]),
        screen_failure_rate=_ratio(sum(x for x, _ in both_screen), sum(s for _, s in both_screen)) if both_screen else None,
        open_queries=total([f.open_queries for f in facts]),
        contract_revisions=sum(revisions) if revisions else None,
        contract_revisions_mean=_mean(float(r) for r in revisions),
        ethics_approval_days_median=_median(f.ethics_approval_days for f in facts if f.ethics_approval_days is not None),
        surveys_received=total([f.surveys_received for f in facts]),
    )


def _site_interactions(snapshot: Snapshot, site_id: str) -> list[tuple[str, dict[str, Any]]]:
    """(interaction id, props) of the site's interactions, most recent first (ties by id)."""
    rows: list[tuple[str, dict[str, Any]]] = []
    for (_, iid), _rel in _into(snapshot, "Site", site_id, "WITH_SITE"):
        rows.append((iid, snapshot.node("Interaction", iid) or {}))
    rows.sort(key=lambda r: r[0])
    rows.sort(key=lambda r: _time_key(r[1].get("occurred_at")), reverse=True)
    return rows


def interaction_brief(snapshot: Snapshot, iid: str, props: dict[str, Any], *, sentiment: float | None = None) -> InteractionBrief:
    investigators = _out(snapshot, "Interaction", iid, "WITH_INVESTIGATOR")
    tactics = _out(snapshot, "Interaction", iid, "APPLIED")
    tags = sorted({b for (_, b), _r in _out(snapshot, "Interaction", iid, "CONCERNS")})
    note = as_str(props.get("note")) or ""
    return InteractionBrief(
        id=iid,
        occurred_at=as_str(props.get("occurred_at")),
        channel=as_str(props.get("channel")),
        direction=as_str(props.get("direction")),
        investigator_id=investigators[0][0][1] if investigators else None,
        note=note if len(note) <= NOTE_EXCERPT else note[: NOTE_EXCERPT - 1] + "…",
        sentiment=sentiment if sentiment is not None else _num(props.get("sentiment")),
        tags=tags,
        tactic_iri=tactics[0][0][1] if tactics else None,
        outcome=as_str(props.get("outcome")) or (as_str(tactics[0][1].get("outcome")) if tactics else None),
    )


def site_360(snapshot: Snapshot, site_id: str) -> Site360:
    """The Site 360 profile; :class:`NotFoundError` for an unknown site."""
    props = snapshot.node("Site", site_id)
    if props is None:
        raise NotFoundError(f"no site with id {site_id!r}")
    identity = SiteIdentity(
        id=site_id,
        name=as_str(props.get("name")) or site_id,
        aliases=as_strs(props.get("aliases")),
        city=as_str(props.get("city")),
        state=as_str(props.get("state")),
        zip=as_str(props.get("zip")),
        country=as_str(props.get("country")),
        lat=_num(props.get("lat")),
        lon=_num(props.get("lon")),
    )

    # studies with per-site facts
    studies: list[SiteStudy] = []
    site_study_ids: set[str] = set()
    for (_, study_id), rel in _out(snapshot, "Site", site_id, "PARTICIPATES_IN"):
        if study_id in site_study_ids:
            continue
        site_study_ids.add(study_id)
        sprops = snapshot.node("Study", study_id) or {}
        conditions = []
        for (_, cid), _r in _out(snapshot, "Study", study_id, "STUDIES"):
            cprops = snapshot.node("Condition", cid) or {}
            conditions.append(
                ConditionRef(id=cid, name=as_str(cprops.get("name")), therapeutic_area=as_str(cprops.get("therapeutic_area")))
            )
        sponsors_rows = _out(snapshot, "Study", study_id, "SPONSORED_BY")
        sponsors_rows.sort(key=lambda r: (0 if r[1].get("role", "lead") == "lead" else 1, r[0][1]))
        sponsors = [as_str((snapshot.node("Sponsor", sid) or {}).get("name")) or sid for (_, sid), _r in sponsors_rows]
        studies.append(
            SiteStudy(
                id=study_id,
                title=as_str(sprops.get("title")),
                phase=as_str(sprops.get("phase")),
                overall_status=as_str(sprops.get("overall_status")),
                conditions=conditions,
                sponsors=sponsors,
                facts=study_facts(rel),
            )
        )

    interactions = _site_interactions(snapshot, site_id)
    per_investigator: Counter[str] = Counter()
    for iid, _p in interactions:
        for (_, inv), _r in _out(snapshot, "Interaction", iid, "WITH_INVESTIGATOR"):
            per_investigator[inv] += 1

    # investigators with their roles on this site's studies
    investigators: list[SiteInvestigator] = []
    for (_, inv_id), _rel in _into(snapshot, "Site", site_id, "WORKS_AT"):
        if any(i.id == inv_id for i in investigators):
            continue
        iprops = snapshot.node("Investigator", inv_id) or {}
        roles = sorted(
            {
                (study_id, as_str(r.get("role")) or "INVESTIGATOR")
                for (_, study_id), r in _out(snapshot, "Investigator", inv_id, "INVESTIGATOR_ON")
                if study_id in site_study_ids and (r.get("site_id") or "") in ("", site_id)
            }
        )
        investigators.append(
            SiteInvestigator(
                id=inv_id,
                name=as_str(iprops.get("name")) or inv_id,
                roles=[StudyRole(study_id=s, role=role) for s, role in roles],
                centrality=centrality_of(iprops),
                interactions=per_investigator.get(inv_id, 0),
            )
        )
    investigators.sort(key=lambda i: (-len(i.roles), -i.centrality.get("pagerank", 0.0), i.name, i.id))

    barriers = site_barrier_activity(snapshot, site_id, active_only=True)[:MAX_BARRIERS]
    friction = site_friction_summary(snapshot, site_id)

    # sentiment: the stored score, else the note's (as the signals module scores it)
    eng = engagement_index(snapshot)
    by_id = {rec.id: rec for rec in eng.records(site_id)}

    def sentiment_of(iid: str, props: dict[str, Any]) -> float | None:
        stored = _num(props.get("sentiment"))
        if stored is not None or iid not in by_id:
            return stored
        return eng.note_sentiment(by_id[iid])

    scores = {iid: sentiment_of(iid, p) for iid, p in interactions}
    sentiments = [v for v in scores.values() if v is not None]
    recent = interactions[:RECENT_INTERACTIONS]
    recent_sent = [v for v in (scores[iid] for iid, _ in recent) if v is not None]
    times = [p.get("occurred_at") for _, p in interactions if parse_time(p.get("occurred_at"))]
    summary = InteractionSummary(
        total=len(interactions),
        by_channel=dict(sorted(Counter(as_str(p.get("channel")) or "unknown" for _, p in interactions).items())),
        first_at=as_str(min(times, key=_time_key)) if times else None,
        last_at=as_str(max(times, key=_time_key)) if times else None,
        mean_sentiment=_mean(sentiments),
        recent_mean_sentiment=_mean(recent_sent),
        recent=[interaction_brief(snapshot, iid, p, sentiment=scores[iid]) for iid, p in recent],
        friction_summary=friction.text,
        friction_trend=friction.trend,
    )
    studies.sort(key=lambda s: s.id)
    return Site360(
        site=identity,
        centrality=centrality_of(props),
        kpis=site_kpis([s.facts for s in studies], [s.overall_status for s in studies]),
        investigators=investigators,
        studies=studies,
        barriers=barriers,
        interactions=summary,
        data_version=snapshot.version,
    )


# --- investigator profile --------------------------------------------------------------------------


def investigator_profile(snapshot: Snapshot, investigator_id: str) -> InvestigatorProfile:
    """An investigator's profile; :class:`NotFoundError` for an unknown investigator."""
    props = snapshot.node("Investigator", investigator_id)
    if props is None:
        raise NotFoundError(f"no investigator with id {investigator_id!r}")
    sites: list[SiteRef] = []
    for (_, site_id), _rel in _out(snapshot, "Investigator", investigator_id, "WORKS_AT"):
        sprops = snapshot.node("Site", site_id) or {}
        if all(s.id != site_id for s in sites):
            sites.append(
                SiteRef(
                    id=site_id,
                    name=as_str(sprops.get("name")) or site_id,
                    city=as_str(sprops.get("city")),
                    country=as_str(sprops.get("country")),
                )
            )
    studies: list[InvestigatorStudy] = []
    for (_, study_id), rel in _out(snapshot, "Investigator", investigator_id, "INVESTIGATOR_ON"):
        sprops = snapshot.node("Study", study_id) or {}
        studies.append(
            InvestigatorStudy(
                study_id=study_id,
                title=as_str(sprops.get("title")),
                phase=as_str(sprops.get("phase")),
                overall_status=as_str(sprops.get("overall_status")),
                role=as_str(rel.get("role")) or "INVESTIGATOR",
                site_id=as_str(rel.get("site_id")) or None,
            )
        )
    studies.sort(key=lambda s: (s.study_id, s.site_id or "", s.role))
    interactions = [iid for (_, iid), _r in _into(snapshot, "Investigator", investigator_id, "WITH_INVESTIGATOR")]
    times = [(snapshot.node("Interaction", iid) or {}).get("occurred_at") for iid in interactions]
    valid_times = [t for t in times if parse_time(t)]
    return InvestigatorProfile(
        id=investigator_id,
        name=as_str(props.get("name")) or investigator_id,
        degrees=as_strs(props.get("degrees")),
        affiliations=as_strs(props.get("affiliations")),
        sites=sorted(sites, key=lambda s: s.id),
        studies=studies,
        centrality=centrality_of(props),
        interactions=len(set(interactions)),
        last_interaction_at=as_str(max(valid_times, key=_time_key)) if valid_times else None,
        data_version=snapshot.version,
    )
