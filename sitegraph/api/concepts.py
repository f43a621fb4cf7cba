"""Ontology lookups for the API: barriers and tactics with their hierarchy and mitigation links.

Pure functions on a snapshot. A concept is named by its IRI or its compact id (the IRI minus its
namespace, e.g. ``stalled-ethics-approval``); ``sgb:``/``sgt:`` prefixed forms are accepted too.
"""

from __future__ import annotations

from typing import Any, Literal

from sitegraph.api.cache import reads_no_interactions
from sitegraph.api.schemas import BarrierDetail, ConceptList, ConceptRef, ConceptSummary, MitigationLinkOut, TacticDetail
from sitegraph.api.state import no_warm_up
from sitegraph.errors import NotFoundError
from sitegraph.ontology.namespaces import BARRIER, TACTIC
from sitegraph.queries.profile import as_str, as_strs
from sitegraph.queries.snapshot import Snapshot

ConceptLabel = Literal["Barrier", "Tactic"]
NAMESPACES: dict[str, str] = {"Barrier": str(BARRIER), "Tactic": str(TACTIC)}
PREFIXES: dict[str, str] = {"Barrier": "sgb:", "Tactic": "sgt:"}


def _compact_index(snapshot: Snapshot, label: ConceptLabel) -> dict[str, str]:
    key = f"concepts.compact.{label}"
    index: dict[str, str] | None = snapshot.cache.get(key)
    if index is None:
        index = {}
        for iri, props in snapshot.nodes(label):
            compact = as_str(props.get("id"))
            if compact:
                index.setdefault(compact, iri)
                index.setdefault(compact.casefold(), iri)
        snapshot.cache[key] = index
    return index


def resolve_concept(snapshot: Snapshot, label: ConceptLabel, ref: str) -> str | None:
    """The IRI of the concept named by ``ref`` (IRI, compact id or prefixed id), or None."""
    ref = ref.strip()
    if not ref:
        return None
    if snapshot.node(label, ref) is not None:
        return ref
    compact = ref[len(PREFIXES[label]) :] if ref.startswith(PREFIXES[label]) else ref
    index = _compact_index(snapshot, label)
    iri = index.get(compact) or index.get(compact.casefold())
    if iri:
        return iri
    candidate = NAMESPACES[label] + compact
    return candidate if snapshot.node(label, candidate) is not None else None


def concept_ref(snapshot: Snapshot, label: ConceptLabel, iri: str) -> ConceptRef:
    props = snapshot.node(label, iri) or {}
    compact = as_str(props.get("id")) or iri.rstrip("/").rsplit("/", 1)[-1]
    return ConceptRef(iri=iri, id=compact, label=as_str(props.get("label")) or compact)


def _summary(snapshot: Snapshot, label: ConceptLabel, iri: str, props: dict[str, Any]) -> dict[str, Any]:
    ref = concept_ref(snapshot, label, iri)
    return {
        **ref.model_dump(),
        "kind": as_str(props.get("kind")),
        "alt_labels": as_strs(props.get("alt_labels")),
        "definition": as_str(props.get("definition")),
        "broader": sorted({b for (_, b), _r in snapshot.out(label, iri, "BROADER")}),
    }


@no_warm_up
@reads_no_interactions
def list_concepts(snapshot: Snapshot, label: ConceptLabel) -> ConceptList:
    """Every concept of the scheme, ordered by compact id then IRI."""
    items = [ConceptSummary(**_summary(snapshot, label, iri, props)) for iri, props in snapshot.nodes(label)]
    items.sort(key=lambda c: (c.id, c.iri))
    return ConceptList(total=len(items), items=items)


def _hierarchy(snapshot: Snapshot, label: ConceptLabel, iri: str) -> dict[str, list[ConceptRef]]:
    broader = sorted({b for (_, b), _r in snapshot.out(label, iri, "BROADER")})
    narrower = sorted({n for (_, n), _r in snapshot.into(label, iri, "BROADER")})
    ancestors: list[str] = []
    frontier, seen = list(broader), {iri}
    while frontier:
        nxt: list[str] = []
        for b in frontier:
            if b in seen:
                continue
            seen.add(b)
            ancestors.append(b)
            nxt += sorted({p for (_, p), _r in snapshot.out(label, b, "BROADER")})
        frontier = nxt
    return {
        "broader_concepts": [concept_ref(snapshot, label, b) for b in broader],
        "narrower": [concept_ref(snapshot, label, n) for n in narrower],
        "ancestors": [concept_ref(snapshot, label, a) for a in ancestors],
    }


def _common(snapshot: Snapshot, label: ConceptLabel, iri: str, props: dict[str, Any]) -> dict[str, Any]:
    return {
        **_summary(snapshot, label, iri, props),
        **_hierarchy(snapshot, label, iri),
        "category": as_str(props.get("category")),
        "scope_note": as_str(props.get("scope_note")),
        "examples": as_strs(props.get("examples")),
        "deprecated": props.get("deprecated") is True,
        "replaced_by": as_str(props.get("replaced_by")),
        "sources": as_strs(props.get("sources")),
        "citations": as_strs(props.get("citations")),
    }


def _link(snapshot: Snapshot, label: ConceptLabel, iri: str, rel: dict[str, Any]) -> MitigationLinkOut:
    return MitigationLinkOut(
        concept=concept_ref(snapshot, label, iri),
        evidence_level=as_str(rel.get("evidence_level")),
        source=as_str(rel.get("source")),
        citation=as_str(rel.get("citation")),
        effect=as_str(rel.get("effect")),
        certainty=as_str(rel.get("certainty")),
        note=as_str(rel.get("note")),
    )


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if value == value and abs(value) != float("inf") else None


@no_warm_up
@reads_no_interactions
def barrier_detail(snapshot: Snapshot, ref: str) -> BarrierDetail:
    iri = resolve_concept(snapshot, "Barrier", ref)
    if iri is None:
        raise NotFoundError(f"no barrier with IRI or id {ref!r}")
    props = snapshot.node("Barrier", iri) or {}
    links = [_link(snapshot, "Tactic", t, rel) for (_, t), rel in snapshot.into("Barrier", iri, "MITIGATES")]
    links.sort(key=lambda m: (m.concept.id, m.concept.iri))
    return BarrierDetail(**_common(snapshot, "Barrier", iri, props), severity=_float(props.get("severity")), mitigated_by=links)


@no_warm_up
@reads_no_interactions
def tactic_detail(snapshot: Snapshot, ref: str) -> TacticDetail:
    iri = resolve_concept(snapshot, "Tactic", ref)
    if iri is None:
        raise NotFoundError(f"no tactic with IRI or id {ref!r}")
    props = snapshot.node("Tactic", iri) or {}
    links = [_link(snapshot, "Barrier", b, rel) for (_, b), rel in snapshot.out("Tactic", iri, "MITIGATES")]
    links.sort(key=lambda m: (m.concept.id, m.concept.iri))
    return TacticDetail(
        **_common(snapshot, "Tactic", iri, props),
        role=as_str(props.get("role")),
        channel=as_str(props.get("channel")),
        effort=as_str(props.get("effort")),
        mitigates=links,
    )
