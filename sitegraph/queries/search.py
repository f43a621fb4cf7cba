"""Site search: free text over name, aliases and city, with country and condition filters.

A pure function over a :class:`~sitegraph.queries.snapshot.Snapshot`, so both stores answer alike.
The order is deterministic: best match first (exact name, name prefix, words in the name, words in
the aliases, words in the city), then name, then id. The search index is built once per data version
and kept in the snapshot's cache.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from pydantic import BaseModel, Field

from sitegraph.queries.snapshot import Snapshot

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
        studies = snapshot.out("Site", site_id, "PARTICIPATES_IN")
        investigators = snapshot.into("Site", site_id, "WORKS_AT")
        cond_ids: set[str] = set()
        cond_text: set[str] = set()
        for (_, study_id), _rel in studies:
            conds = condition_of_study.get(study_id)
            if conds is None:
                conds = []
                for (_, cond_id), _r in snapshot.out("Study", study_id, "STUDIES"):
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
            studies=len({s for s, _ in studies}),
            investigators=len({i for i, _ in investigators}),
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


def _index(snapshot: Snapshot) -> list[_Entry]:
    index = snapshot.cache.get(_INDEX_KEY)
    if index is None:
        index = _build_index(snapshot)
        snapshot.cache[_INDEX_KEY] = index
    return list(index)


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
    for entry in _index(snapshot):
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
