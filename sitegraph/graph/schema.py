"""The graph model: node labels, their keys, relationship types and their endpoints.

This module is the allow-list. Every label and relationship type that reaches Cypher comes from
here, never from user input; :func:`node_spec` and :func:`rel_spec` raise :class:`SchemaError` for
anything else. See ``docs/graph-model.md`` for the diagram and the meaning of each property.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sitegraph.errors import SchemaError


@dataclass(frozen=True)
class NodeSpec:
    """A node label, the property that identifies a node of it, and the properties worth indexing."""

    label: str
    key: str
    description: str
    indexes: tuple[str, ...] = ()
    fulltext: tuple[str, ...] = ()


@dataclass(frozen=True)
class RelSpec:
    """A relationship type and the labels it may join.

    ``endpoints`` lists the allowed (start label, end label) pairs. ``identity`` names relationship
    properties that take part in its identity: two relationships of this type between the same
    nodes are the same one only if these properties are equal (an investigator can be principal
    investigator on one study at two sites).
    """

    type: str
    endpoints: tuple[tuple[str, str], ...]
    description: str
    identity: tuple[str, ...] = ()
    properties: tuple[str, ...] = field(default=())


NODES: dict[str, NodeSpec] = {
    spec.label: spec
    for spec in (
        NodeSpec(
            "Site",
            "id",
            "A facility where studies are run (a hospital, clinic or research centre), one per real place.",
            indexes=("name", "country", "city"),
            fulltext=("name", "city", "aliases"),
        ),
        NodeSpec("Investigator", "id", "A person who runs studies at sites.", indexes=("name",)),
        NodeSpec("Study", "id", "A clinical study, keyed by its NCT id.", indexes=("phase", "overall_status")),
        NodeSpec("Sponsor", "id", "An organisation that sponsors or collaborates on studies.", indexes=("name",)),
        NodeSpec("Condition", "id", "A condition or disease studied.", indexes=("name", "therapeutic_area")),
        NodeSpec(
            "Barrier", "iri", "A kind of friction a site faces (a concept of the barrier ontology).", indexes=("label", "id")
        ),
        NodeSpec(
            "Tactic", "iri", "An action that mitigates barriers (a concept of the tactic ontology).", indexes=("label", "id")
        ),
        NodeSpec(
            "Interaction",
            "id",
            "A call, email, visit, fax or portal message with a site or investigator.",
            indexes=("occurred_at", "channel"),
        ),
        NodeSpec("SitegraphMeta", "id", "Bookkeeping: the data version that caches are checked against."),
    )
}

RELATIONSHIPS: dict[str, RelSpec] = {
    spec.type: spec
    for spec in (
        RelSpec("WORKS_AT", (("Investigator", "Site"),), "The investigator works at the site."),
        RelSpec(
            "PARTICIPATES_IN",
            (("Site", "Study"),),
            "The site takes part in the study; carries the per-site study facts.",
            properties=(
                "status",
                "activation_date",
                "activation_days",
                "enrolled",
                "target",
                "screened",
                "screen_failures",
                "contract_revisions",
                "ethics_approval_days",
                "open_queries",
                "surveys_received",
            ),
        ),
        RelSpec(
            "INVESTIGATOR_ON",
            (("Investigator", "Study"),),
            "The investigator's role on the study at one site (or overall, with site_id '').",
            identity=("site_id",),
            properties=("role", "site_id"),
        ),
        RelSpec("SPONSORED_BY", (("Study", "Sponsor"),), "Who sponsors the study.", properties=("role",)),
        RelSpec("STUDIES", (("Study", "Condition"),), "The study is about the condition."),
        RelSpec(
            "BROADER",
            (("Barrier", "Barrier"), ("Tactic", "Tactic")),
            "SKOS broader: the concept is a narrower case of the other (within one scheme).",
        ),
        RelSpec(
            "MITIGATES",
            (("Tactic", "Barrier"),),
            "The tactic mitigates the barrier, with its evidence.",
            properties=("evidence_level", "source", "effect", "note"),
        ),
        RelSpec("WITH_SITE", (("Interaction", "Site"),), "The interaction was with the site."),
        RelSpec("WITH_INVESTIGATOR", (("Interaction", "Investigator"),), "The interaction was with the investigator."),
        RelSpec("ABOUT_STUDY", (("Interaction", "Study"),), "The interaction was about the study."),
        RelSpec(
            "CONCERNS",
            (("Interaction", "Barrier"),),
            "The interaction raised the barrier (tagged from its note, or observed).",
            properties=("source", "confidence", "severity"),
        ),
        RelSpec("APPLIED", (("Interaction", "Tactic"),), "The interaction applied the tactic.", properties=("outcome",)),
    )
}


def node_spec(label: str) -> NodeSpec:
    """The spec of an allowed label; :class:`SchemaError` for anything else."""
    try:
        return NODES[label]
    except KeyError:
        raise SchemaError(f"unknown node label {label!r}; allowed: {', '.join(sorted(NODES))}") from None


def rel_spec(rel_type: str) -> RelSpec:
    """The spec of an allowed relationship type; :class:`SchemaError` for anything else."""
    try:
        return RELATIONSHIPS[rel_type]
    except KeyError:
        raise SchemaError(f"unknown relationship type {rel_type!r}; allowed: {', '.join(sorted(RELATIONSHIPS))}") from None


def check_endpoints(rel_type: str, start: str, end: str) -> RelSpec:
    """The spec of ``rel_type`` if it may join ``start`` to ``end``; :class:`SchemaError` otherwise."""
    spec = rel_spec(rel_type)
    if (start, end) not in spec.endpoints:
        raise SchemaError(f"{rel_type} cannot join {start} to {end}; allowed: {spec.endpoints}")
    return spec


def key_of(label: str) -> str:
    """The key property of a label."""
    return node_spec(label).key


USER_LABELS = tuple(label for label in NODES if label != "SitegraphMeta")
