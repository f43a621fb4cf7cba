"""Compare two versions of the ontology: concepts and links added, removed and changed, for curators."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rdflib.compare import graph_diff, to_isomorphic

from sitegraph.ontology.loader import load_ontology
from sitegraph.ontology.model import Concept, MitigationLink, Ontology

_KIND_WORDS = {"category": "category", "barrier": "barrier", "group": "tactic group", "tactic": "tactic"}
_FIELD_WORDS = {
    "kind": "kind",
    "label": "prefLabel",
    "alt_labels": "altLabel",
    "hidden_labels": "hiddenLabel",
    "definition": "definition",
    "scope_note": "scope note",
    "examples": "example",
    "broader": "broader",
    "category": "category",
    "deprecated": "deprecated",
    "replaced_by": "replaced by",
    "sources": "source",
    "citations": "citation",
    "exact_match": "exactMatch",
    "close_match": "closeMatch",
    "related_match": "relatedMatch",
    "relations": "relation",
    "extra_types": "extra type",
    "severity": "severity weight",
    "role": "role",
    "channel": "channel",
    "effort": "effort",
    "tactic": "tactic",
    "barrier": "barrier",
    "evidence_level": "evidence level",
    "source": "source",
    "citation": "citation",
    "effect": "effect",
    "certainty": "certainty",
    "note": "note",
}
_IGNORED = frozenset({"file", "iri", "id"})


@dataclass(frozen=True)
class FieldChange:
    """One field that differs: for lists, the items added and removed; otherwise old and new value."""

    field: str
    old: Any = None
    new: Any = None
    added: tuple[Any, ...] = ()
    removed: tuple[Any, ...] = ()

    def render(self) -> str:
        word = _FIELD_WORDS.get(self.field, self.field)
        if self.added or self.removed:
            parts = [f"{word} added: {', '.join(_show(v) for v in self.added)}"] if self.added else []
            parts += [f"{word} removed: {', '.join(_show(v) for v in self.removed)}"] if self.removed else []
            return "; ".join(parts)
        return f"{word}: {_show(self.old)} → {_show(self.new)}"


@dataclass(frozen=True)
class Change:
    """A concept or link present in both versions, with what changed."""

    iri: str
    name: str
    changes: tuple[FieldChange, ...]


@dataclass
class OntologyDiff:
    """What changed from ``old`` to ``new``."""

    old_name: str
    new_name: str
    added: list[Concept] = field(default_factory=list)
    removed: list[Concept] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)
    links_added: list[MitigationLink] = field(default_factory=list)
    links_removed: list[MitigationLink] = field(default_factory=list)
    links_changed: list[Change] = field(default_factory=list)
    vocabulary_added: int = 0
    vocabulary_removed: int = 0

    @property
    def empty(self) -> bool:
        return not (
            self.added
            or self.removed
            or self.changed
            or self.links_added
            or self.links_removed
            or self.links_changed
            or self.vocabulary_added
            or self.vocabulary_removed
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "old": self.old_name,
            "new": self.new_name,
            "concepts": {
                "added": [c.iri for c in self.added],
                "removed": [c.iri for c in self.removed],
                "changed": {c.iri: [f.render() for f in c.changes] for c in self.changed},
            },
            "links": {
                "added": [lk.iri for lk in self.links_added],
                "removed": [lk.iri for lk in self.links_removed],
                "changed": {c.iri: [f.render() for f in c.changes] for c in self.links_changed},
            },
            "vocabulary_triples": {"added": self.vocabulary_added, "removed": self.vocabulary_removed},
        }

    def render(self, new: Ontology | None = None, old: Ontology | None = None) -> str:
        """The diff in words a curator reads."""
        lines = [f"ontology diff: {self.old_name} → {self.new_name}"]
        if self.empty:
            return "\n".join([*lines, "no differences"])
        lines.append(
            f"concepts: {len(self.added)} added, {len(self.removed)} removed, {len(self.changed)} changed; "
            f"links: {len(self.links_added)} added, {len(self.links_removed)} removed, {len(self.links_changed)} changed"
        )
        for c in self.added:
            lines.append(f'  + {_KIND_WORDS[c.kind]} {c.id} "{c.label}"' + (f" (under {_tail(c.broader)})" if c.broader else ""))
        for c in self.removed:
            lines.append(f'  - {_KIND_WORDS[c.kind]} {c.id} "{c.label}"')
        for ch in self.changed:
            lines.append(f"  ~ {ch.name}")
            lines += [f"      {f.render()}" for f in ch.changes]
        for lk in self.links_added:
            lines.append(f"  + link: {_tail((lk.tactic,))} mitigates {_tail((lk.barrier,))} ({_words(lk.evidence_level)})")
        for lk in self.links_removed:
            lines.append(f"  - link: {_tail((lk.tactic,))} no longer mitigates {_tail((lk.barrier,))}")
        for ch in self.links_changed:
            lines.append(f"  ~ link {ch.name}")
            lines += [f"      {f.render()}" for f in ch.changes]
        if self.vocabulary_added or self.vocabulary_removed:
            lines.append(f"  vocabulary and shapes: {self.vocabulary_added} triple(s) added, {self.vocabulary_removed} removed")
        return "\n".join(lines)


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return f"<{value}>" if value.startswith("http") else f'"{value}"'
    if isinstance(value, (list, tuple)):
        return ", ".join(_show(v) for v in value) or "(none)"
    return str(value)


def _tail(iris: tuple[str | None, ...]) -> str:
    return ", ".join((i or "?").rstrip("/").rsplit("/", 1)[-1] for i in iris)


def _words(level: str | None) -> str:
    return (level or "no evidence level").replace("-", " ")


def _field_changes(old: Any, new: Any) -> tuple[FieldChange, ...]:
    out: list[FieldChange] = []
    old_d = {f.name: getattr(old, f.name) for f in dataclasses.fields(old)}
    new_d = {f.name: getattr(new, f.name) for f in dataclasses.fields(new)}
    for name in sorted(set(old_d) | set(new_d), key=lambda n: list(_FIELD_WORDS).index(n) if n in _FIELD_WORDS else 99):
        if name in _IGNORED:
            continue
        a, b = old_d.get(name), new_d.get(name)
        if a == b:
            continue
        if isinstance(a, tuple) or isinstance(b, tuple):
            sa, sb = set(a or ()), set(b or ())
            out.append(FieldChange(name, added=tuple(sorted(sb - sa, key=str)), removed=tuple(sorted(sa - sb, key=str))))
        else:
            out.append(FieldChange(name, old=a, new=b))
    return tuple(out)


def diff_ontologies(old: Ontology, new: Ontology, *, old_name: str = "old", new_name: str = "new") -> OntologyDiff:
    """The differences between two loaded ontologies."""
    out = OntologyDiff(old_name, new_name)
    oc, nc = old.concepts(), new.concepts()
    out.added = [nc[i] for i in sorted(set(nc) - set(oc))]
    out.removed = [oc[i] for i in sorted(set(oc) - set(nc))]
    for iri in sorted(set(oc) & set(nc)):
        changes = _field_changes(oc[iri], nc[iri])
        if changes:
            c = nc[iri]
            out.changed.append(Change(iri, f'{_KIND_WORDS[c.kind]} {c.id} "{c.label}"', changes))
    out.links_added = [new.links[i] for i in sorted(set(new.links) - set(old.links))]
    out.links_removed = [old.links[i] for i in sorted(set(old.links) - set(new.links))]
    for iri in sorted(set(old.links) & set(new.links)):
        changes = _field_changes(old.links[iri], new.links[iri])
        if changes:
            out.links_changed.append(Change(iri, new.links[iri].id, changes))
    # Everything else: the vocabulary (core.ttl) and the shapes.
    old_rest, new_rest = old.graph - old.content_graph(), new.graph - new.content_graph()
    old_rest += old.shapes
    new_rest += new.shapes
    _both, only_old, only_new = graph_diff(to_isomorphic(old_rest), to_isomorphic(new_rest))
    out.vocabulary_added, out.vocabulary_removed = len(only_new), len(only_old)
    return out


def diff(old: Ontology | str | Path | None, new: Ontology | str | Path | None = None) -> OntologyDiff:
    """Compare two ontologies: loaded ones, paths (folder or file), or git revisions (``HEAD~1``).

    ``None`` means the packaged files as they are now (the working tree). Only Turtle syntax errors
    stop a diff; invalid content is compared as it is.
    """
    old_onto = old if isinstance(old, Ontology) else load_ontology(old)
    new_onto = new if isinstance(new, Ontology) else load_ontology(new)
    return diff_ontologies(old_onto, new_onto, old_name=_name(old, old_onto), new_name=_name(new, new_onto))


def _name(spec: Ontology | str | Path | None, onto: Ontology) -> str:
    if spec is None:
        return "packaged ontology (working tree)"
    if isinstance(spec, Ontology):
        return ", ".join(onto.files[-3:]) if onto.files else "ontology"
    return str(spec)
