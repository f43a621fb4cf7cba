"""Result models shared by the CLI (``--json``), the API and the tests.

These are the documented shapes of related sites, next-best tactics and the Site 360 profile.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class PathStep(BaseModel):
    """One node on an explanation path (immutable: answers may share one)."""

    model_config = ConfigDict(frozen=True)

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
    score_parts: dict[str, float] = Field(
        default_factory=dict, description="Components of the score (evidence, effectiveness, cost, recency...)."
    )
    barriers: list[str] = Field(
        default_factory=list, description="IRIs of the site's own (active or recurring) barriers this tactic addresses."
    )
    inferred_barriers: list[str] = Field(
        default_factory=list,
        description="IRIs of barriers not raised at the site but common at its most related sites, that the tactic addresses.",
    )
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


# --- signals from interactions (sitegraph.queries.signals) -------------------------------------


class Tag(BaseModel):
    """A barrier concept found in a note by matching the ontology's labels and altLabels."""

    iri: str = Field(description="The Barrier's IRI.")
    id: str = Field(description="The Barrier's compact id.")
    label: str
    phrase: str = Field(description="The text of the note that matched (as written).")
    start: int = Field(description="Character offset of the match in the note.")
    end: int
    confidence: float = Field(description="0.9 for a match of the label as written, 0.8 when only plural/singular forms differ.")
    negated: bool = Field(default=False, description="The mention is negated ('no issues with ...', '... resolved').")


class BarrierActivity(BaseModel):
    """How active a barrier is at a site: severity-weighted mentions decayed by age."""

    iri: str
    id: str
    label: str
    category: str | None = Field(default=None, description="Compact id of the barrier's top-level category.")
    activity: float = Field(description="Σ severity × confidence × 0.5^(age/half-life) over the site's mentions of the barrier.")
    active: bool = Field(description="activity ≥ the active threshold.")
    mentions: int = Field(description="Interactions that mention the barrier (observed or tagged).")
    observations: int = Field(description="Of which recorded as observed.")
    tags: int = Field(description="Of which found only in the note text.")
    severity: float | None = Field(default=None, description="Mean severity of the mentions.")
    last_seen: str | None = Field(default=None, description="occurred_at of the latest mention.")
    last_interaction_id: str | None = None


class ChannelStat(BaseModel):
    """How a site responds on one channel."""

    channel: str
    interactions: int
    mean_sentiment: float | None = None
    tactic_tries: int = 0
    tactic_successes: int = 0
    score: float = Field(description="Smoothed success rate and sentiment combined, in [0, 1].")


class FrictionSummary(BaseModel):
    """A short summary of recent friction at a site."""

    site_id: str
    reference_date: str | None = Field(
        description="The end of the UTC day of the latest interaction in the data (the next midnight UTC); "
        "ages are measured from it, not from the wall clock."
    )
    half_life_days: float
    top_barriers: list[BarrierActivity] = Field(default_factory=list)
    active_barriers: int = 0
    trend: str = Field(
        description="rising, falling, stable or none: weighted mentions in the last 90 days against the 90 days before."
    )
    recent_weight: float = 0.0
    previous_weight: float = 0.0
    last_contact: str | None = None
    last_channel: str | None = None
    interactions: int = 0
    interactions_90d: int = 0
    sentiment_avg: float | None = Field(
        default=None, description="Mean sentiment of the notes of the last 90 days (all notes if none)."
    )
    sentiment_notes: int = 0
    text: str = ""


# --- tactic effectiveness (sitegraph.queries.effectiveness) ------------------------------------


class TacticEffectiveness(BaseModel):
    """Observed outcomes of one tactic against one barrier (optionally within one kind of site)."""

    tactic_iri: str
    tactic_id: str
    tactic_label: str
    barrier_iri: str
    barrier_id: str
    barrier_label: str
    group: str | None = Field(default=None, description="The kind of site (country or size bucket) when grouped.")
    tries: int = Field(description="Applications with a known outcome (pending ones excluded).")
    successes: int = Field(description="Outcomes 'resolved' or 'improved'.")
    resolved: int = 0
    success_rate: float | None = None
    interval: tuple[float, float] | None = Field(default=None, description="95% Wilson score interval of the success rate.")
    median_days_to_resolution: float | None = Field(
        default=None, description="From the first mention of the barrier in the episode to the 'resolved' outcome."
    )
    sites: int = 0


# --- evaluation (sitegraph.queries.evaluate) ----------------------------------------------------


class RankingMetrics(BaseModel):
    precision: float
    ndcg: float


class TaskEvaluation(BaseModel):
    """Metrics of one task (next-best tactics or related sites), product and baselines."""

    product: RankingMetrics
    random: RankingMetrics
    popular: RankingMetrics
    sites: int = Field(description="Sites evaluated (those with at least one relevant item in the truth).")


class EvaluationReport(BaseModel):
    k: int
    seed: int
    tactics: TaskEvaluation
    related: TaskEvaluation

    def as_json(self) -> dict[str, dict[str, object]]:
        """The documented ``--json`` shape: ``{"tactics": {"precision_at_5": .., "ndcg_at_5": .., "baselines": {...}}, ...}``."""
        p, n = f"precision_at_{self.k}", f"ndcg_at_{self.k}"

        def task(t: TaskEvaluation) -> dict[str, object]:
            return {
                p: t.product.precision,
                n: t.product.ndcg,
                "baselines": {
                    "random": {p: t.random.precision, n: t.random.ndcg},
                    "popular": {p: t.popular.precision, n: t.popular.ndcg},
                },
            }

        return {"tactics": task(self.tactics), "related": task(self.related)}
