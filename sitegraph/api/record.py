"""Logging an interaction: validate its references, tag and score its note, store it, read it back.

The interaction becomes an ``Interaction`` node with ``WITH_SITE``, ``WITH_INVESTIGATOR``,
``ABOUT_STUDY``, ``APPLIED {outcome}`` and ``CONCERNS {source: "tagged", confidence}`` relationships,
written in one :meth:`GraphStore.write` (one transaction on either store), so it is all there or
none of it is. Tags and sentiment are those of :func:`sitegraph.queries.signals.score_interaction`
(``tag_note`` on the ontology's barrier labels, ``sentiment``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sitegraph.api.schemas import InteractionCreate, InteractionRecord, InteractionTag
from sitegraph.errors import InvalidInputError, NotFoundError, Problem
from sitegraph.graph.store import GraphBatch, GraphStore
from sitegraph.ontology.namespaces import TACTIC
from sitegraph.queries.models import Tag
from sitegraph.queries.signals import BarrierIndex, build_barrier_index, sentiment, tag_note
from sitegraph.queries.snapshot import write_through

log = logging.getLogger(__name__)

TACTIC_NS = str(TACTIC)
ID_PREFIX = "interaction:"


def new_interaction_id() -> str:
    return f"{ID_PREFIX}{uuid.uuid4()}"


def _tactic_candidates(ref: str) -> list[str]:
    if "://" in ref:
        return [ref]
    compact = ref[4:] if ref.startswith("sgt:") else ref
    return [TACTIC_NS + compact, compact]


def resolve_references(store: GraphStore, body: InteractionCreate) -> str | None:
    """Check that every referenced node exists; returns the tactic's IRI. 422 (InvalidInputError) naming each bad field."""
    problems: list[Problem] = []

    def check(label: str, key: str | None, field: str, what: str) -> None:
        if key is not None and not store.existing_keys(label, [key]):
            problems.append(Problem("body", f"no {what} with id {key!r}", field=field))

    check("Site", body.site_id, "site_id", "site")
    check("Investigator", body.investigator_id, "investigator_id", "investigator")
    check("Study", body.study_id, "study_id", "study")
    tactic_iri: str | None = None
    if body.tactic_id is not None:
        candidates = _tactic_candidates(body.tactic_id)
        found = store.existing_keys("Tactic", candidates)
        tactic_iri = next((c for c in candidates if c in found), None)
        if tactic_iri is None:
            problems.append(Problem("body", f"no tactic with IRI or id {body.tactic_id!r}", field="tactic_id"))
    if problems:
        raise InvalidInputError(
            problems, summary="invalid interaction: " + "; ".join(f"{p.field}: {p.message}" for p in problems)
        )
    return tactic_iri


def _tags_of(tags: Iterable[Tag]) -> list[tuple[str, float | None]]:
    """(barrier IRI, confidence) per tagged barrier, the highest confidence of its mentions, by IRI."""
    out: dict[str, float] = {}
    for tag in tags:
        confidence = min(1.0, max(0.0, float(tag.confidence)))
        out[tag.iri] = max(confidence, out.get(tag.iri, 0.0))
    return [(iri, out[iri]) for iri in sorted(out)]


_index_lock = threading.Lock()
_index_cache: dict[str, BarrierIndex] = {}


def _barrier_index(store: GraphStore) -> BarrierIndex:
    """The tagger's index of the store's barrier labels, rebuilt only when those labels change.

    The current snapshot's index when the snapshot in hand is current (no build: every write keeps it,
    see :func:`sitegraph.queries.signals.barrier_index`); else read from the store itself (a few dozen
    nodes), not from a new snapshot: rebuilding the whole snapshot for a write would be wasted work.
    """
    from sitegraph.queries.signals import barrier_index
    from sitegraph.queries.snapshot import snapshot_cache

    current = snapshot_cache(store).latest()
    if current is not None and current.version == store.version():  # the same labels, already indexed
        return barrier_index(current)
    barriers = list(store.iter_nodes("Barrier"))
    fingerprint = hashlib.sha256(json.dumps(barriers, sort_keys=True, default=str).encode()).hexdigest()
    with _index_lock:
        index = _index_cache.get(fingerprint)
        if index is None:
            index = build_barrier_index(barriers)
            _index_cache.clear()
            _index_cache[fingerprint] = index
    return index


def score_note(store: GraphStore, note: str) -> tuple[list[tuple[str, float | None]], float | None]:
    """(tags, sentiment) of a note, as :func:`sitegraph.queries.signals.score_interaction` computes them."""
    tags = tag_note(note, _barrier_index(store))
    score = round(min(1.0, max(-1.0, float(sentiment(note)))), 4)
    return _tags_of(tags), score


def build_batch(
    iid: str,
    body: InteractionCreate,
    tactic_iri: str | None,
    tags: list[tuple[str, float | None]],
    sentiment: float | None,
    *,
    recorded_by: str,
    recorded_at: datetime,
) -> GraphBatch:
    occurred = body.occurred_at.astimezone(UTC).isoformat()
    props: dict[str, Any] = {
        "channel": body.channel,
        "occurred_at": occurred,
        "note": body.note,
        "source": "api",
        "recorded_at": recorded_at.astimezone(UTC).isoformat(),
        "recorded_by": recorded_by,
    }
    if body.direction:
        props["direction"] = body.direction
    if body.outcome:
        props["outcome"] = body.outcome
    if sentiment is not None:
        props["sentiment"] = sentiment
    batch = GraphBatch()
    batch.add_node("Interaction", iid, props)
    batch.add_rel("WITH_SITE", "Interaction", iid, "Site", body.site_id)
    if body.investigator_id:
        batch.add_rel("WITH_INVESTIGATOR", "Interaction", iid, "Investigator", body.investigator_id)
    if body.study_id:
        batch.add_rel("ABOUT_STUDY", "Interaction", iid, "Study", body.study_id)
    if tactic_iri:
        batch.add_rel("APPLIED", "Interaction", iid, "Tactic", tactic_iri, {"outcome": body.outcome} if body.outcome else {})
    for iri, confidence in tags:
        rel_props: dict[str, Any] = {"source": "tagged"}
        if confidence is not None:
            rel_props["confidence"] = round(confidence, 4)
        batch.add_rel("CONCERNS", "Interaction", iid, "Barrier", iri, rel_props)
    return batch


def log_interaction(store: GraphStore, body: InteractionCreate, *, recorded_by: str) -> InteractionRecord:
    """Validate, tag, score and store the interaction; returns it as read back from the store."""
    tactic_iri = resolve_references(store, body)
    tags, sentiment = score_note(store, body.note)
    known = store.existing_keys("Barrier", [iri for iri, _ in tags])
    dropped = [iri for iri, _ in tags if iri not in known]
    if dropped:
        log.warning("ignoring tags that are not barriers in the store: %s", ", ".join(dropped))
    tags = [(iri, c) for iri, c in tags if iri in known]
    iid = new_interaction_id()
    batch = build_batch(iid, body, tactic_iri, tags, sentiment, recorded_by=recorded_by, recorded_at=datetime.now(UTC))
    write_through(store, batch)  # the next read sees it without rebuilding the whole snapshot
    log.info("logged %s at %s (%d tag(s), sentiment %s) with key %s", iid, body.site_id, len(tags), sentiment, recorded_by)
    return read_interaction(store, iid)


def read_interaction(store: GraphStore, iid: str) -> InteractionRecord:
    """An interaction as stored; :class:`NotFoundError` if there is none with that id."""
    props = store.get_node("Interaction", iid)
    if props is None:
        raise NotFoundError(f"no interaction with id {iid!r}")

    def first(rel_type: str, label: str) -> tuple[str | None, dict[str, Any]]:
        key = "iri" if label in ("Tactic", "Barrier") else "id"
        rows = sorted(
            ((str(p.get(key)), rp) for lb, p, rp in store.neighbors("Interaction", iid, rel_type) if lb == label),
            key=lambda r: r[0],
        )
        return rows[0] if rows else (None, {})

    site_id, _ = first("WITH_SITE", "Site")
    inv_id, _ = first("WITH_INVESTIGATOR", "Investigator")
    study_id, _ = first("ABOUT_STUDY", "Study")
    tactic_iri, applied = first("APPLIED", "Tactic")
    tactic_compact: str | None = None
    if tactic_iri:
        tprops = store.get_node("Tactic", tactic_iri) or {}
        tactic_compact = str(tprops.get("id") or tactic_iri.rstrip("/").rsplit("/", 1)[-1])
    tags: list[InteractionTag] = []
    for label, bprops, rp in store.neighbors("Interaction", iid, "CONCERNS"):
        if label != "Barrier":
            continue
        biri = str(bprops.get("iri"))
        compact = str(bprops.get("id") or biri.rstrip("/").rsplit("/", 1)[-1])
        conf = rp.get("confidence")
        tags.append(
            InteractionTag(
                iri=biri,
                id=compact,
                label=str(bprops.get("label") or compact),
                source=str(rp.get("source") or "observed"),
                confidence=float(conf) if isinstance(conf, (int, float)) and not isinstance(conf, bool) else None,
            )
        )
    tags.sort(key=lambda t: (t.iri, t.source))
    sentiment = props.get("sentiment")
    outcome = props.get("outcome") or applied.get("outcome")
    return InteractionRecord(
        id=iid,
        site_id=site_id or "",
        investigator_id=inv_id,
        study_id=study_id,
        channel=str(props.get("channel") or ""),
        direction=props.get("direction"),
        occurred_at=str(props.get("occurred_at") or ""),
        note=str(props.get("note") or ""),
        tactic_iri=tactic_iri,
        tactic_id=tactic_compact,
        outcome=str(outcome) if outcome else None,
        sentiment=float(sentiment) if isinstance(sentiment, (int, float)) and not isinstance(sentiment, bool) else None,
        tags=tags,
        recorded_at=props.get("recorded_at"),
        source=props.get("source"),
    )
