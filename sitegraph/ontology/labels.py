"""Find barrier (or tactic) concepts named in free text by their prefLabels, altLabels and hiddenLabels.

Matching is on whole words, case- and punctuation-insensitive, longest label first, without overlaps:
``"IRB still hasn't approved, and contract redlines again"`` finds *stalled ethics approval* and
*repeated contract revisions*. The index is built from a loaded ontology or from the graph's nodes.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from sitegraph.graph.store import GraphStore
from sitegraph.ontology.model import ConceptKind, Ontology

_WORD = re.compile(r"[\w]+(?:'[\w]+)*")


def _norm(token: str) -> str:
    return unicodedata.normalize("NFKC", token).casefold()


def tokens(text: str) -> list[tuple[str, int, int]]:
    """Normalised words of a text with their character offsets."""
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    return [(_norm(m.group(0)), m.start(), m.end()) for m in _WORD.finditer(text)]


@dataclass(frozen=True)
class LabelEntry:
    """A concept and the labels that name it."""

    iri: str
    id: str
    label: str
    labels: tuple[str, ...]


@dataclass(frozen=True)
class LabelMatch:
    """A concept found in a text: which label matched, and where (character offsets)."""

    iri: str
    id: str
    label: str
    matched: str
    start: int
    end: int

    @property
    def preferred(self) -> bool:
        return self.matched == self.label


class LabelIndex:
    """Labels of concepts, for tagging free text."""

    def __init__(self, entries: Iterable[LabelEntry]) -> None:
        self._by_first: dict[str, list[tuple[tuple[str, ...], LabelEntry, str]]] = {}
        for entry in entries:
            for label in entry.labels:
                words = tuple(t for t, _s, _e in tokens(label))
                if words:
                    self._by_first.setdefault(words[0], []).append((words, entry, label))
        for candidates in self._by_first.values():
            candidates.sort(key=lambda c: (-len(c[0]), c[1].iri))

    @classmethod
    def from_ontology(
        cls, onto: Ontology, kinds: tuple[ConceptKind, ...] = ("barrier",), *, include_deprecated: bool = False
    ) -> LabelIndex:
        """An index of the ontology's concepts of the given kinds (barriers by default)."""
        return cls(
            LabelEntry(c.iri, c.id, c.label or c.id, c.labels)
            for c in sorted(onto.concepts().values(), key=lambda c: c.iri)
            if c.kind in kinds and (include_deprecated or not c.deprecated)
        )

    @classmethod
    def from_store(cls, store: GraphStore, label: str = "Barrier", kinds: tuple[str, ...] = ("barrier",)) -> LabelIndex:
        """An index of the graph's Barrier (or Tactic) nodes, as synced; deprecated nodes are left out."""
        entries = []
        for props in store.iter_nodes(label):
            if props.get("kind") not in kinds or props.get("deprecated"):
                continue
            names = [props.get("label"), *list(props.get("alt_labels") or []), *list(props.get("hidden_labels") or [])]
            entries.append(
                LabelEntry(str(props["iri"]), str(props.get("id")), str(props.get("label")), tuple(n for n in names if n))
            )
        return cls(entries)

    def match(self, text: str) -> list[LabelMatch]:
        """Every label occurrence in the text, left to right, longest first, not overlapping."""
        words = tokens(text)
        out: list[LabelMatch] = []
        i = 0
        while i < len(words):
            hit = None
            for label_words, entry, label in self._by_first.get(words[i][0], ()):
                n = len(label_words)
                if tuple(w for w, _s, _e in words[i : i + n]) == label_words:
                    hit = (n, entry, label)
                    break
            if hit is None:
                i += 1
                continue
            n, entry, label = hit
            out.append(LabelMatch(entry.iri, entry.id, entry.label, label, words[i][1], words[i + n - 1][2]))
            i += n
        return out

    def concepts(self, text: str) -> list[str]:
        """The IRIs of the concepts named in the text, once each, in order of first mention."""
        seen: dict[str, None] = {}
        for m in self.match(text):
            seen.setdefault(m.iri, None)
        return list(seen)


def tag_text(text: str, onto: Ontology, kinds: tuple[ConceptKind, ...] = ("barrier",)) -> list[LabelMatch]:
    """Shortcut: the barrier concepts (or other kinds) named in a text."""
    return LabelIndex.from_ontology(onto, kinds).match(text)
