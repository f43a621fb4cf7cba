"""Site search: free text over name, aliases and city, with country and condition filters.

A pure function over a :class:`~sitegraph.queries.snapshot.Snapshot`, so both stores answer alike.
The order is deterministic: best match first (exact name, name prefix, words in the name, words in
the aliases, words in the city), then name, then id. The search index is built once per data version
and kept in the snapshot's cache.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, Field

from sitegraph.queries.related import _neighbour_keys
from sitegraph.queries.snapshot import Snapshot, carried

MAX_LIMIT = 100
_INDEX_KEY = "search.sites.v1"


class SiteSummary(BaseModel):
    """A site as listed by search results."""

    id: str = Field(examples=["site:massachusetts-general-hospital-boston-massachusetts-unitedstates"])
    name: str = Field(examples=["Massachusetts General Hospital"])
    city: str | None = None
    state: str | None = None
    country: str | None = None
    studies: int = Field(description="Studies the site takes part in.")
    investigators: int = Field(description="Investigators who work at the site.")


class SiteSearchResult(BaseModel):
    """One page of search results and the total number of matches."""

    total: int = Field(description="Matches across all pages.")
    limit: int
    offset: int
    items: list[SiteSummary]


def normalize(text: str) -> str:
    """Case- and accent-insensitive form used for matching (``'Zürich'`` → ``'zurich'``)."""
    if text.isascii():
        return text.casefold().strip()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()


@dataclass(frozen=True)
class _Entry:
    summary: SiteSummary
    name: str
    aliases: str
    city: str
    country: str
    condition_ids: frozenset[str]
    condition_text: tuple[str, ...]
    haystack: str  # name, aliases and city together: a cheap first test


def _as_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return " | ".join(str(v) for v in value)
    return str(value)


def _build_index(snapshot: Snapshot) -> list[_Entry]:
    condition_of_study: dict[str, list[tuple[str, str]]] = {}
    entries: list[_Entry] = []
    for site_id, props in snapshot.nodes("Site"):
        studies = _neighbour_keys(snapshot, "Site", site_id, "PARTICIPATES_IN", "Study", incoming=False)
        investigators = _neighbour_keys(snapshot, "Site", site_id, "WORKS_AT", "Investigator", incoming=True)
        cond_ids: set[str] = set()
        cond_text: set[str] = set()
        for study_id in studies:
            conds = condition_of_study.get(study_id)
            if conds is None:
                conds = []
                for cond_id in _neighbour_keys(snapshot, "Study", study_id, "STUDIES", "Condition", incoming=False):
                    cprops = snapshot.node("Condition", cond_id) or {}
                    text = " | ".join(t for t in (_as_text(cprops.get("name")), _as_text(cprops.get("therapeutic_area"))) if t)
                    conds.append((cond_id, normalize(text)))
                condition_of_study[study_id] = conds
            for cond_id, text in conds:
                cond_ids.add(normalize(cond_id))
                cond_text.add(text)
        name = _as_text(props.get("name")) or site_id
        summary = SiteSummary(
            id=site_id,
            name=name,
            city=props.get("city"),
            state=props.get("state"),
            country=props.get("country"),
            studies=len(set(studies)),
            investigators=len(set(investigators)),
        )
        entries.append(
            _Entry(
                summary=summary,
                name=normalize(name),
                aliases=normalize(_as_text(props.get("aliases"))),
                city=normalize(_as_text(props.get("city"))),
                country=normalize(_as_text(props.get("country"))),
                condition_ids=frozenset(cond_ids),
                condition_text=tuple(sorted(cond_text)),
                haystack="\n".join(
                    (normalize(name), normalize(_as_text(props.get("aliases"))), normalize(_as_text(props.get("city"))))
                ),
            )
        )
    return entries


@dataclass(frozen=True)
class _Index:
    """The entries, and their haystacks joined into one text so that a word is found in all of them at once."""

    entries: list[_Entry]
    text: str  # haystacks joined by _SEP
    starts: np.ndarray  # offset of each entry's haystack in ``text``
    by_country: dict[str, list[int]]


_SEP = "\x00"


def _index(snapshot: Snapshot) -> _Index:
    index = snapshot.cache.get(_INDEX_KEY)
    if index is None:
        index = carried(snapshot, _INDEX_KEY)  # a write of interactions only since the previous snapshot: the same
        if index is not None:
            snapshot.cache[_INDEX_KEY] = index
            return index
        entries = _build_index(snapshot)
        starts = np.zeros(len(entries), dtype=np.int64)
        pos = 0
        for i, e in enumerate(entries):
            starts[i] = pos
            pos += len(e.haystack) + len(_SEP)
        by_country: dict[str, list[int]] = {}
        for i, e in enumerate(entries):
            by_country.setdefault(e.country, []).append(i)
        index = _Index(entries, _SEP.join(e.haystack for e in entries), starts, by_country)
        snapshot.cache[_INDEX_KEY] = index
    return index


def search_index(snapshot: Snapshot) -> None:
    """Build the snapshot's search index now (it is built on the first search otherwise)."""
    _index(snapshot)


def _containing(index: _Index, token: str) -> set[int]:
    """Positions of the entries whose haystack contains ``token`` (``token in entry.haystack``, for a token without _SEP)."""
    found: list[int] = []
    find = index.text.find
    at = find(token)
    while at >= 0:
        found.append(at)
        at = find(token, at + 1)
    if not found:
        return set()
    return set((np.searchsorted(index.starts, np.array(found, dtype=np.int64), side="right") - 1).tolist())


def _rank(entry: _Entry, q: str, tokens: list[str]) -> int | None:
    """Lower is better; None when the entry does not match."""
    if entry.name == q:
        return 0
    if entry.name.startswith(q):
        return 1
    if all(t in entry.name for t in tokens):
        return 2
    if all(t in entry.name or t in entry.aliases for t in tokens):
        return 3
    if all(t in entry.name or t in entry.aliases or t in entry.city for t in tokens):
        return 4
    return None


def _matches_condition(entry: _Entry, condition: str) -> bool:
    return condition in entry.condition_ids or any(condition in text for text in entry.condition_text)


def search_sites(
    snapshot: Snapshot,
    q: str | None = None,
    *,
    country: str | None = None,
    condition: str | None = None,
    limit: int = 20,
    offset: int = 0,
) -> SiteSearchResult:
    """Sites matching every given criterion, one page of them, best match first.

    ``q`` matches when each of its words occurs in the name, an alias or the city (case- and
    accent-insensitive); ``country`` must equal the site's country; ``condition`` matches a condition
    id exactly or occurs in a condition's name or therapeutic area of one of the site's studies.
    """
    limit = max(1, min(int(limit), MAX_LIMIT))
    offset = max(0, int(offset))
    qn = normalize(q) if q else ""
    tokens = qn.split()
    country_n = normalize(country) if country else ""
    condition_n = normalize(condition) if condition else ""
    hits: list[tuple[int, str, str, _Entry]] = []
    index = _index(snapshot)
    positions: list[int] | None = None  # candidates in index order (None: every entry)
    if country_n:
        positions = index.by_country.get(country_n, [])
    if tokens and not any(_SEP in t for t in tokens):
        # each token must occur in the haystack: intersect the entries that contain each one
        common: set[int] | None = None
        for t in sorted(set(tokens), key=len, reverse=True):
            found = _containing(index, t)
            common = found if common is None else common & found
            if not common:
                break
        common = common or set()
        positions = sorted(common) if positions is None else [i for i in positions if i in common]
    candidates = index.entries if positions is None else [index.entries[i] for i in positions]
    for entry in candidates:
        if country_n and entry.country != country_n:
            continue
        if condition_n and not _matches_condition(entry, condition_n):
            continue
        if tokens and not all(t in entry.haystack for t in tokens):
            continue
        rank = _rank(entry, qn, tokens) if tokens else 0
        if rank is None:
            continue
        hits.append((rank, entry.name, entry.summary.id, entry))
    hits.sort(key=lambda h: (h[0], h[1], h[2]))
    page = [h[3].summary.model_copy() for h in hits[offset : offset + limit]]
    return SiteSearchResult(total=len(hits), limit=limit, offset=offset, items=page)
