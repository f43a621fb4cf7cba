"""Request and response models of the API that are not shared with the CLI.

Site 360 and investigator profiles live in :mod:`sitegraph.queries.profile`, search results in
:mod:`sitegraph.queries.search`, related sites and tactics in :mod:`sitegraph.queries.models`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sitegraph.queries.models import RelatedSite, TacticRecommendation

Channel = Literal["call", "email", "visit", "fax", "portal"]
Outcome = Literal["resolved", "improved", "no_change", "worse", "pending"]
Direction = Literal["inbound", "outbound"]

NOTE_MAX = 4000
ID_MAX = 200
FUTURE_SLACK = timedelta(days=1)


# --- health ----------------------------------------------------------------------------------------


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    version: str = Field(description="The sitegraph version serving.")


class Precomputed(BaseModel):
    phase: Literal["warming up", "computing", "finished"] = Field(
        description="Building the snapshot and its indexes, answering every site, or done (for `data_version`)."
    )
    data_version: int | None = Field(
        description="The data version these answers are for (answers of older versions are never served)."
    )
    sites: int
    answers: int = Field(description="Answers ready so far (sites x endpoints), the carried ones included.")
    total: int
    finished: bool
    abandoned: bool = Field(description="Stopped because the data changed: a newer version is computed instead.")
    seconds: float = Field(description="Time spent so far, or in all when finished.")
    kept_mib: float = Field(description="Memory of the kept (compressed) answers.")
    hits: int = Field(description="Requests answered from them.")
    carried: int = Field(
        0, description="Answers kept from the previous data version: the write between them could not change them."
    )


class Ready(BaseModel):
    status: Literal["ready"] = "ready"
    store: str = Field(description="memory or neo4j.")
    data_version: int = Field(description="The store's data version (changes on every write).")
    precomputed: Precomputed | None = Field(
        default=None,
        description="Progress of the answers computed ahead for every site (absent when the API does not precompute).",
    )


# --- sites -----------------------------------------------------------------------------------------


class RelatedSitesResponse(BaseModel):
    site_id: str
    items: list[RelatedSite]


class TacticsResponse(BaseModel):
    site_id: str
    items: list[TacticRecommendation]


# --- ontology --------------------------------------------------------------------------------------


class ConceptRef(BaseModel):
    iri: str = Field(examples=["https://w3id.org/sitegraph/barrier/stalled-ethics-approval"])
    id: str = Field(examples=["stalled-ethics-approval"])
    label: str = Field(examples=["Stalled ethics approval"])


class ConceptSummary(ConceptRef):
    kind: str | None = Field(None, description="category or barrier; group or tactic.")
    alt_labels: list[str] = Field(default_factory=list)
    definition: str | None = None
    broader: list[str] = Field(default_factory=list, description="IRIs of the broader concepts.")


class ConceptList(BaseModel):
    total: int
    items: list[ConceptSummary]


class MitigationLinkOut(BaseModel):
    """A MITIGATES link seen from one end: the concept at the other end, and the evidence."""

    concept: ConceptRef
    evidence_level: str | None = Field(None, description="Compact id of the evidence level (e.g. strong, moderate).")
    source: str | None = Field(None, description="IRI of the source of the evidence.")
    citation: str | None = None
    effect: str | None = None
    certainty: str | None = None
    note: str | None = None


class ConceptDetail(ConceptSummary):
    category: str | None = Field(None, description="Compact id of the top-level category (barriers) or group (tactics).")
    scope_note: str | None = None
    examples: list[str] = Field(default_factory=list)
    deprecated: bool = False
    replaced_by: str | None = Field(None, description="IRI of the concept that replaces a deprecated one.")
    sources: list[str] = Field(default_factory=list, description="IRIs of sources.")
    citations: list[str] = Field(default_factory=list)
    broader_concepts: list[ConceptRef] = Field(default_factory=list, description="Direct broader concepts (SKOS broader).")
    narrower: list[ConceptRef] = Field(default_factory=list, description="Direct narrower concepts.")
    ancestors: list[ConceptRef] = Field(default_factory=list, description="Every broader concept up to the top, nearest first.")


class BarrierDetail(ConceptDetail):
    severity: float | None = Field(None, description="How much the barrier usually costs a study (0..1).")
    mitigated_by: list[MitigationLinkOut] = Field(default_factory=list, description="Tactics that mitigate this barrier.")


class TacticDetail(ConceptDetail):
    role: str | None = Field(None, description="Who carries the tactic out.")
    channel: str | None = None
    effort: str | None = None
    mitigates: list[MitigationLinkOut] = Field(default_factory=list, description="Barriers this tactic mitigates.")


# --- interactions ----------------------------------------------------------------------------------


class InteractionCreate(BaseModel):
    """An interaction to log. Ids must exist; ``tactic_id`` is an IRI or a compact id."""

    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=True,
        json_schema_extra={
            "examples": [
                {
                    "site_id": "site:massachusetts-general-hospital-boston-massachusetts-unitedstates",
                    "channel": "call",
                    "occurred_at": "2025-03-14T15:30:00Z",
                    "note": "Budget negotiation stalled again; the PI is frustrated with the delay.",
                    "tactic_id": "fair-market-value-budget",
                    "outcome": "pending",
                }
            ]
        },
    )

    site_id: str = Field(min_length=1, max_length=ID_MAX, description="The site's id.")
    investigator_id: str | None = Field(None, min_length=1, max_length=ID_MAX, description="The investigator spoken to, if any.")
    study_id: str | None = Field(None, min_length=1, max_length=ID_MAX, description="The study it was about, if any.")
    channel: Channel
    direction: Direction | None = None
    occurred_at: datetime = Field(
        description="ISO 8601. A timestamp without a timezone is taken as UTC; stored in UTC. At most one day in the future."
    )
    note: str = Field(min_length=1, max_length=NOTE_MAX, description=f"Free text, 1 to {NOTE_MAX} characters.")
    tactic_id: str | None = Field(
        None, min_length=1, max_length=ID_MAX, description="The tactic applied (IRI or compact id), if any."
    )
    outcome: Outcome | None = Field(None, description="The outcome of the tactic, if one was applied.")

    @field_validator("occurred_at")
    @classmethod
    def _utc_not_future(cls, value: datetime) -> datetime:
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        if value > datetime.now(UTC) + FUTURE_SLACK:
            raise ValueError("occurred_at is more than a day in the future")
        return value


class InteractionTag(BaseModel):
    """A barrier the interaction concerns."""

    iri: str
    id: str
    label: str
    source: str = Field(description="tagged (from the note) or observed.")
    confidence: float | None = None


class InteractionRecord(BaseModel):
    """An interaction as stored."""

    id: str = Field(examples=["interaction:4f0c2f7e-2f1b-4b7a-9d1e-3c2a1b0d9e8f"])
    site_id: str
    investigator_id: str | None = None
    study_id: str | None = None
    channel: str
    direction: str | None = None
    occurred_at: str = Field(description="ISO 8601, UTC.")
    note: str
    tactic_iri: str | None = None
    tactic_id: str | None = None
    outcome: str | None = None
    sentiment: float | None = Field(None, description="Sentiment of the note, -1 (negative) to 1 (positive).")
    tags: list[InteractionTag] = Field(default_factory=list, description="Barriers the note was tagged with.")
    recorded_at: str | None = Field(None, description="When the API stored it (ISO 8601, UTC).")
    source: str | None = Field(None, description="'api' for interactions logged through the API.")
