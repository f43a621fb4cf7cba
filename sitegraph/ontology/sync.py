"""Sync the ontology into a graph store: Barrier and Tactic nodes, BROADER and MITIGATES relationships.

Only :class:`~sitegraph.graph.store.GraphStore` methods are used, so it works on both stores. The
ontology is validated first and nothing is written when it is invalid. Sync writes only what differs
from the graph, so syncing twice changes nothing. A concept gone from the files is deleted, unless an
interaction still refers to it (``CONCERNS`` or ``APPLIED``): then it stays, marked ``deprecated`` and
``removed_from_ontology``, and the report lists it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sitegraph.graph.store import GraphBatch, GraphStore, Props, RelKey
from sitegraph.ontology.graphmap import (
    APPLIED,
    BARRIER_LABEL,
    BROADER,
    CONCERNS,
    MANAGED_NODE_PROPS,
    MANAGED_REL_PROPS,
    MITIGATES,
    TACTIC_LABEL,
    concept_props,
    link_props,
    node_label,
)
from sitegraph.ontology.loader import load_ontology
from sitegraph.ontology.model import Ontology
from sitegraph.ontology.validation import validate_ontology

log = logging.getLogger(__name__)

LABELS = (BARRIER_LABEL, TACTIC_LABEL)
REL_TYPES = (BROADER, MITIGATES)
_REFERENCES = (CONCERNS, APPLIED)


@dataclass
class SyncReport:
    """What a sync did, per node label and relationship type."""

    created: dict[str, list[str]] = field(default_factory=lambda: {label: [] for label in LABELS})
    updated: dict[str, list[str]] = field(default_factory=lambda: {label: [] for label in LABELS})
    deleted: dict[str, list[str]] = field(default_factory=lambda: {label: [] for label in LABELS})
    deprecated: dict[str, list[str]] = field(default_factory=lambda: {label: [] for label in LABELS})
    """Concepts gone from the files but kept, marked deprecated, because interactions still refer to them."""
    newly_deprecated: dict[str, list[str]] = field(default_factory=lambda: {label: [] for label in LABELS})
    """Of those, the ones this sync marked (the others were marked by an earlier sync)."""
    unchanged: dict[str, int] = field(default_factory=lambda: {label: 0 for label in LABELS})
    rels_created: dict[str, int] = field(default_factory=lambda: {t: 0 for t in REL_TYPES})
    rels_updated: dict[str, int] = field(default_factory=lambda: {t: 0 for t in REL_TYPES})
    rels_deleted: dict[str, int] = field(default_factory=lambda: {t: 0 for t in REL_TYPES})
    rels_unchanged: dict[str, int] = field(default_factory=lambda: {t: 0 for t in REL_TYPES})

    @property
    def changed(self) -> bool:
        lists = (self.created, self.updated, self.deleted, self.newly_deprecated)
        counts = (self.rels_created, self.rels_updated, self.rels_deleted)
        return any(v for d in lists for v in d.values()) or any(v for d in counts for v in d.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "changed": self.changed,
            "nodes": {
                label: {
                    "created": len(self.created[label]),
                    "updated": len(self.updated[label]),
                    "deleted": len(self.deleted[label]),
                    "unchanged": self.unchanged[label],
                    "kept_deprecated": list(self.deprecated[label]),
                    "newly_deprecated": list(self.newly_deprecated[label]),
                }
                for label in LABELS
            },
            "relationships": {
                t: {
                    "created": self.rels_created[t],
                    "updated": self.rels_updated[t],
                    "deleted": self.rels_deleted[t],
                    "unchanged": self.rels_unchanged[t],
                }
                for t in REL_TYPES
            },
            "deleted": {label: list(self.deleted[label]) for label in LABELS},
        }

    def render(self) -> str:
        lines = []
        for label in LABELS:
            lines.append(
                f"{label} nodes: {len(self.created[label])} created, {len(self.updated[label])} updated, "
                f"{len(self.deleted[label])} deleted, {len(self.deprecated[label])} kept as deprecated, "
                f"{self.unchanged[label]} unchanged"
            )
        for t in REL_TYPES:
            lines.append(
                f"{t} relationships: {self.rels_created[t]} created, {self.rels_updated[t]} updated, "
                f"{self.rels_deleted[t]} deleted, {self.rels_unchanged[t]} unchanged"
            )
        for label in LABELS:
            for iri in self.deprecated[label]:
                lines.append(f"  kept, marked deprecated (removed from the files but still used by interactions): {iri}")
            for iri in self.deleted[label]:
                lines.append(f"  deleted (removed from the files): {iri}")
        if not self.changed:
            lines.append("the graph already matched the ontology: nothing changed")
        return "\n".join(lines)


def _same(have: Any, want: Any) -> bool:
    if isinstance(have, (list, tuple)) and isinstance(want, (list, tuple)):
        return list(have) == list(want)
    if isinstance(have, bool) or isinstance(want, bool):
        return have is want or (isinstance(have, bool) and isinstance(want, bool) and have == want)
    return bool(have == want)


def _changes(have: Mapping[str, Any] | None, want: Props, managed: frozenset[str]) -> Props:
    """The property writes that turn ``have`` into ``want`` (``None`` removes a managed property)."""
    if have is None:
        return {k: v for k, v in want.items() if v is not None}
    out: Props = {k: v for k, v in want.items() if v is not None and not _same(have.get(k), v)}
    for name in managed:
        if want.get(name) is None and have.get(name) is not None:
            out[name] = None
    return out


def _desired(onto: Ontology) -> tuple[dict[str, dict[str, Props]], dict[RelKey, Props]]:
    nodes: dict[str, dict[str, Props]] = {label: {} for label in LABELS}
    rels: dict[RelKey, Props] = {}
    for concept in onto.concepts().values():
        label = node_label(concept)
        nodes[label][concept.iri] = concept_props(concept, onto)
        for up in concept.broader:
            rels[RelKey(BROADER, label, concept.iri, label, up)] = {}
    for link in onto.links.values():
        assert link.tactic is not None and link.barrier is not None  # guaranteed by validation
        rels[RelKey(MITIGATES, TACTIC_LABEL, link.tactic, BARRIER_LABEL, link.barrier)] = link_props(link)
    return nodes, rels


def _referenced(store: GraphStore, label: str, iri: str) -> bool:
    return any(store.neighbors(label, iri, rel_type, "in") for rel_type in _REFERENCES)


def sync(store: GraphStore, ontology: Ontology | str | Path | None = None) -> SyncReport:
    """Make the store's Barrier/Tactic nodes and BROADER/MITIGATES relationships match the ontology.

    ``ontology`` is a loaded :class:`Ontology`, or what :func:`load_ontology` takes (None = packaged).
    Raises :class:`~sitegraph.errors.InvalidInputError` before writing anything when it is invalid.
    """
    onto = ontology if isinstance(ontology, Ontology) else load_ontology(ontology)
    validate_ontology(onto).raise_if_invalid("the ontology is invalid; nothing was written to the graph")
    want_nodes, want_rels = _desired(onto)
    report = SyncReport()
    batch = GraphBatch()
    doomed: dict[str, list[str]] = {label: [] for label in LABELS}

    for label in LABELS:
        have_nodes = {str(p[("iri")]): p for p in store.iter_nodes(label)}
        for iri, want in sorted(want_nodes[label].items()):
            have = have_nodes.get(iri)
            writes = _changes(have, want, MANAGED_NODE_PROPS)
            if have is None:
                report.created[label].append(iri)
            elif writes:
                report.updated[label].append(iri)
            else:
                report.unchanged[label] += 1
            if writes or have is None:
                batch.add_node(label, iri, writes)
        for iri in sorted(set(have_nodes) - set(want_nodes[label])):
            have = have_nodes[iri]
            if _referenced(store, label, iri):
                report.deprecated[label].append(iri)
                if not (have.get("deprecated") is True and have.get("removed_from_ontology") is True):
                    report.newly_deprecated[label].append(iri)
                    batch.add_node(label, iri, {"deprecated": True, "removed_from_ontology": True})
            else:
                doomed[label].append(iri)

    stale: list[RelKey] = []
    for rel_type in REL_TYPES:
        have_rels = {
            RelKey(r.type, r.start_label, r.start, r.end_label, r.end): r.props for r in store.iter_relationships(rel_type)
        }
        wanted = {k: v for k, v in want_rels.items() if k.type == rel_type}
        for key, want in sorted(wanted.items(), key=lambda kv: (kv[0].start, kv[0].end)):
            have_props = have_rels.get(key)
            writes = _changes(have_props, want, MANAGED_REL_PROPS)
            if have_props is None:
                report.rels_created[rel_type] += 1
                batch.add_rel(key.type, key.start_label, key.start, key.end_label, key.end, writes)
            elif writes:
                report.rels_updated[rel_type] += 1
                batch.add_rel(key.type, key.start_label, key.start, key.end_label, key.end, writes)
            else:
                report.rels_unchanged[rel_type] += 1
        gone = [k for k in have_rels if k not in wanted]
        report.rels_deleted[rel_type] = len(gone)
        stale += gone

    if len(batch):
        store.write(batch)
    if stale:
        store.delete_relationships(stale)
    for label, iris in doomed.items():
        if iris:
            store.delete_nodes(label, iris)
            report.deleted[label] = iris
    log.info("ontology sync: %s", report.as_dict())
    return report
