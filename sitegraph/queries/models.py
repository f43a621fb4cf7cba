"""Result models shared by the CLI (``--json``), the API and the tests.

These are the documented shapes of related sites, next-best tactics and the Site 360 profile.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class PathStep(BaseModel):
    """One node on an explanation path."""

    label: str = Field(description="Node label, e.g. Site, Barrier, Tactic.")
    id: str = Field(description="The node's key (id or IRI).")
    name: str = Field(description="Human-readable name or label.")


class ExplanationPath(BaseModel):
    """A path in the graph that supports a result, and the Cypher that shows it in Neo4j Browser."""

    description: str
    nodes: list[PathStep]
    relationships: list[str] = Field(description="Relationship types between consecutive nodes.")
    cypher: str = Field(description="A read-only Cypher query (with literal parameters inlined as $params) returning the path.")
    params: dict[str, str | int | float | list[str]] = Field(default_factory=dict)


class Evidence(BaseModel):
    """Why a tactic is believed to work against a barrier."""

    barrier_iri: str
    evidence_level: str | None = None
    source: str | None = None
    effect: str | None = None
    observed_success_rate: float | None = Field(default=None, description="Successes / tries at similar sites.")
    observed_interval: tuple[float, float] | None = Field(default=None, description="95% interval of the success rate.")
    observed_tries: int = 0


class EngageWith(BaseModel):
    """Whom to engage at the site, and through which channel."""

    investigator_id: str | None = None
    investigator_name: str | None = None
    reason: str = ""
    channel: str | None = None
    channel_reason: str = ""


class TacticRecommendation(BaseModel):
    rank: int
    tactic_iri: str
    tactic_id: str
    tactic_label: str
    score: float
    score_parts: dict[str, float] = Field(default_factory=dict, description="Components of the score (evidence, effectiveness, cost, recency...).")
    barriers: list[str] = Field(default_factory=list, description="IRIs of the site's active barriers this tactic addresses.")
    role: str | None = None
    channel: str | None = None
    effort: str | None = None
    engage: EngageWith = Field(default_factory=EngageWith)
    evidence: list[Evidence] = Field(default_factory=list)
    explanations: list[ExplanationPath] = Field(default_factory=list)
    recently_tried: bool = False


class RelatedReason(BaseModel):
    kind: str = Field(description="shared_investigator, shared_study, shared_condition, similar_barriers or network_proximity.")
    weight: float
    items: list[PathStep] = Field(default_factory=list)


class RelatedSite(BaseModel):
    rank: int
    site_id: str
    name: str
    city: str | None = None
    country: str | None = None
    score: float
    score_parts: dict[str, float] = Field(default_factory=dict)
    reasons: list[RelatedReason] = Field(default_factory=list)
    cypher: str
    params: dict[str, str | int | float | list[str]] = Field(default_factory=dict)
