"""Signals from interactions: barrier tags in notes, note sentiment, per-site barrier activity and friction.

Everything here is a pure function of a :class:`~sitegraph.queries.snapshot.Snapshot` (or of a note and
a :class:`BarrierIndex`), so the embedded store and Neo4j give the same answers.

Tagging
    A note is matched against every non-deprecated Barrier's ``label``, ``alt_labels`` (and
    ``hidden_labels`` when present), so curators improve tagging by editing the ontology's RDF.
    Text and labels are normalised the same way: lower case, accents and apostrophes removed, split
    into words, plural ``-s``/``-ies`` folded. Matches are whole words, longest first, without
    overlaps. A mention is *negated* (and not a tag) when, in the same clause, one of ``no``,
    ``not``, ``never``, ``without``, ``none``, ``nothing``, ``neither``, ``nor`` or a resolution verb
    (``resolved``, ``fixed``, ``solved``, ``cleared``, ``sorted``) comes up to four words before it, or
    a resolution verb, ``no longer`` or ``not an issue``/``no problem`` comes up to four words after
    it. ``no change``, ``no progress``, ``no response`` ... are not negations (pseudo-negations), nor
    is a resolution verb itself negated (``not yet resolved``).

Sentiment
    The VADER compound score (``vaderSentiment``, which ships its lexicon) of each sentence of the
    note, averaged over the sentences: VADER is built for sentence-length text.

Barrier activity
    For a site and a barrier: ``Σ severity × confidence × 0.5^(age / 90 days)`` over the site's
    interactions that mention the barrier: ``CONCERNS`` relationships (``observed`` or ``tagged``)
    and tags found in the note now, one mention per interaction and barrier (the strongest). Age is
    measured from the *reference date*, the end of the UTC day of the latest interaction in the data
    (the next midnight UTC; an interaction at exactly 00:00 UTC keeps that midnight), not the wall
    clock, so results are reproducible; and a day's writes keep the same reference date, so the
    answers of sites a write does not touch stay the same (so the API can keep them across
    writes). Severity is the relationship's, else the barrier's ``severity``, else 0.5; confidence
    is the relationship's, else 1 for observed and the tagger's for tags. An interaction whose
    outcome is ``resolved`` adds nothing, and mentions before a later resolution of the same barrier
    at the site count half. A barrier is *active* at activity ≥ 0.3 (about one moderate mention in
    the last three months).
"""

from __future__ import annotations

import math
import re
import threading
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sitegraph.errors import NotFoundError
from sitegraph.graph.store import GraphStore, gc_paused
from sitegraph.queries.models import BarrierActivity, ChannelStat, FrictionSummary, Tag
from sitegraph.queries.snapshot import LINEAGE_KEY, NodeId, Snapshot, carried, get_snapshot

HALF_LIFE_DAYS = 90.0
"""Age at which a mention counts half."""
ACTIVE_THRESHOLD = 0.3
"""Activity at which a barrier counts as active."""
TREND_WINDOW_DAYS = 90.0
DEFAULT_SEVERITY = 0.5
RESOLVED_DISCOUNT = 0.5
TAG_CONFIDENCE_EXACT = 0.9
TAG_CONFIDENCE_STEMMED = 0.8
SUCCESS_OUTCOMES = frozenset({"resolved", "improved"})
FAILURE_OUTCOMES = frozenset({"no_change", "worse"})
KNOWN_OUTCOMES = SUCCESS_OUTCOMES | FAILURE_OUTCOMES

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# --- text normalisation -------------------------------------------------------------------------

_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_SENTENCE = re.compile(r"[^.!?;\n]+(?:[.!?;]+|$)")
_CLAUSE_CHARS = frozenset(".;:!?,()[]—–")
_CLAUSE_WORDS = frozenset({"but", "however", "although", "though", "whereas", "while"})
_NEG_BEFORE = frozenset({"no", "not", "never", "without", "none", "nothing", "neither", "nor"})
_RESOLUTION = frozenset({"resolved", "fixed", "solved", "cleared", "sorted"})
_PSEUDO_AFTER_CUE = frozenset(
    {
        "change",
        "progress",
        "improvement",
        "response",
        "reply",
        "answer",
        "update",
        "news",
        "movement",
        "decision",
        "feedback",
        "yet",
        "only",
    }
)
_PROBLEM_WORDS = frozenset({"issue", "problem", "concern", "blocker"})
NEGATION_WINDOW = 4


def _norm_token(raw: str) -> str:
    if raw.isascii():  # NFKD leaves ASCII as it is, and it has no combining marks
        return raw.lower().replace("'", "")
    text = unicodedata.normalize("NFKD", raw.lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return text.replace("'", "").replace("’", "")


def _stem(tok: str) -> str:
    if len(tok) > 4 and tok.endswith("ies"):
        return tok[:-3] + "y"
    if len(tok) > 3 and tok.endswith("s") and not tok.endswith(("ss", "us", "is")):
        return tok[:-1]
    return tok


def tokens(text: str) -> list[tuple[str, int, int]]:
    """(normalised word, start, end) of each word of ``text``."""
    return [(_norm_token(m.group()), m.start(), m.end()) for m in _TOKEN.finditer(text)]


# --- the barrier index and the tagger -------------------------------------------------------------


class _Hit(NamedTuple):
    iri: str
    start: int
    end: int
    confidence: float
    negated: bool


@dataclass
class BarrierIndex:
    """Label phrases of the barrier concepts, ready for tagging (build with :func:`build_barrier_index`)."""

    phrases: dict[tuple[str, ...], list[tuple[str, tuple[str, ...]]]]
    info: dict[str, tuple[str, str]]  # iri -> (compact id, label)
    max_len: int
    _cache: dict[str, tuple[_Hit, ...]] = field(default_factory=dict, repr=False)
    _iri_cache: dict[str, dict[str, float]] = field(default_factory=dict, repr=False)

    CACHE_SIZE = 200_000

    def tags(self, text: str) -> dict[str, float]:
        """{barrier IRI: best confidence} of the non-negated mentions in ``text`` (cached per sentence)."""
        out: dict[str, float] = {}
        for sentence in _SENTENCE.findall(text):
            found = self._iri_cache.get(sentence)
            if found is None:
                found = {}
                for h in self._sentence(sentence):
                    if not h.negated and h.confidence > found.get(h.iri, 0.0):
                        found[h.iri] = h.confidence
                if len(self._iri_cache) >= self.CACHE_SIZE:
                    self._iri_cache.clear()
                self._iri_cache[sentence] = found
            for iri, conf in found.items():
                if conf > out.get(iri, 0.0):
                    out[iri] = conf
        return out

    def _sentence(self, sentence: str) -> tuple[_Hit, ...]:
        cached = self._cache.get(sentence)
        if cached is None:
            cached = tuple(self._sentence_hits(sentence))
            if len(self._cache) >= self.CACHE_SIZE:
                self._cache.clear()
            self._cache[sentence] = cached
        return cached

    def hits(self, text: str) -> list[_Hit]:
        """Every mention in ``text`` (negated ones included), in order; cached per sentence."""
        out: list[_Hit] = []
        for m in _SENTENCE.finditer(text):
            cached = self._sentence(m.group())
            base = m.start()
            out += [h._replace(start=h.start + base, end=h.end + base) for h in cached] if base else cached
        return out

    def _sentence_hits(self, sentence: str) -> list[_Hit]:
        toks = tokens(sentence)
        if not toks:
            return []
        stems = [_stem(t[0]) for t in toks]
        # clause[i]: index of the clause token i belongs to (punctuation or a conjunction starts a new one)
        clause: list[int] = []
        current = 0
        for i, (tok, start, _end) in enumerate(toks):
            if i > 0:
                gap = sentence[toks[i - 1][2] : start]
                if any(c in _CLAUSE_CHARS for c in gap) or ("-" in gap and gap != gap.strip()) or tok in _CLAUSE_WORDS:
                    current += 1
            clause.append(current)
        out: list[_Hit] = []
        i = 0
        n = len(toks)
        while i < n:
            matched = False
            for length in range(min(self.max_len, n - i), 0, -1):
                key = tuple(stems[i : i + length])
                entries = self.phrases.get(key)
                if not entries:
                    continue
                raw = tuple(t[0] for t in toks[i : i + length])
                negated = self._negated(toks, clause, i, i + length)
                seen: set[str] = set()
                for iri, label_raw in entries:
                    if iri in seen:
                        continue
                    seen.add(iri)
                    conf = TAG_CONFIDENCE_EXACT if raw == label_raw else TAG_CONFIDENCE_STEMMED
                    out.append(_Hit(iri, toks[i][1], toks[i + length - 1][2], conf, negated))
                i += length
                matched = True
                break
            if not matched:
                i += 1
        return out

    @staticmethod
    def _negated(toks: list[tuple[str, int, int]], clause: list[int], start: int, end: int) -> bool:
        words = [t[0] for t in toks]
        c = clause[start]
        # before the phrase
        for j in range(start - 1, max(-1, start - 1 - NEGATION_WINDOW), -1):
            if clause[j] != c:
                break
            w = words[j]
            if w in _NEG_BEFORE:
                nxt = words[j + 1] if j + 1 < len(words) else ""
                if nxt in _PSEUDO_AFTER_CUE and j + 1 < start:
                    continue
                return True
            if w in _RESOLUTION and not _resolution_negated(words, j, max(0, j - 3)):
                return True
        # after the phrase
        last = min(len(words), end + NEGATION_WINDOW)
        for j in range(end, last):
            if clause[j] != clause[end - 1]:
                break
            w = words[j]
            if w in _RESOLUTION and not _resolution_negated(words, j, end):
                return True
            if w == "no" and j + 1 < len(words) and words[j + 1] == "longer":
                return True
            if w in ("no", "not") and any(_stem(x) in _PROBLEM_WORDS for x in words[j + 1 : j + 4]):
                return True
        return False


_NEGATES_RESOLUTION = frozenset({"not", "never", "hasnt", "havent", "isnt", "wasnt", "arent", "werent", "un"})


def _resolution_negated(words: list[str], j: int, floor: int = 0) -> bool:
    """Whether the resolution verb at ``j`` is itself negated ('not yet resolved', "hasn't been fixed")."""
    return any(w in _NEGATES_RESOLUTION for w in words[max(floor, j - 3) : j])


def build_barrier_index(barriers: Iterable[Mapping[str, Any]]) -> BarrierIndex:
    """An index of the label, alt_labels and hidden_labels of Barrier property dicts (deprecated ones skipped)."""
    phrases: dict[tuple[str, ...], list[tuple[str, tuple[str, ...]]]] = {}
    info: dict[str, tuple[str, str]] = {}
    for props in sorted(barriers, key=lambda p: str(p.get("iri"))):
        iri = props.get("iri")
        if not isinstance(iri, str) or props.get("deprecated") is True:
            continue
        label = str(props.get("label") or props.get("id") or iri)
        info[iri] = (str(props.get("id") or iri.rsplit("/", 1)[-1]), label)
        names: list[str] = [label]
        for key in ("alt_labels", "hidden_labels"):
            value = props.get(key)
            if isinstance(value, str):
                names.append(value)
            elif isinstance(value, (list, tuple)):
                names += [v for v in value if isinstance(v, str)]
        for name in names:
            raw = tuple(t[0] for t in tokens(name))
            if not raw:
                continue
            key_t = tuple(_stem(t) for t in raw)
            entries = phrases.setdefault(key_t, [])
            if all(e[0] != iri for e in entries):
                entries.append((iri, raw))
    max_len = max((len(k) for k in phrases), default=1)
    return BarrierIndex(phrases=phrases, info=info, max_len=max_len)


def barrier_index(snapshot: Snapshot) -> BarrierIndex:
    """The barrier index of the snapshot's ontology (cached for the snapshot's version)."""
    cached = snapshot.cache.get("signals.barrier_index")
    if cached is None:
        # a write of interactions only since the previous snapshot: the same barriers
        cached = carried(snapshot, "signals.barrier_index")
        if cached is None:
            cached = build_barrier_index(props for _, props in snapshot.nodes("Barrier"))
        snapshot.cache["signals.barrier_index"] = cached
    return cached


def tag_note(text: str, index: BarrierIndex, *, include_negated: bool = False) -> list[Tag]:
    """Barrier mentions in a note: one tag per barrier (its first non-negated mention), in text order.

    >>> idx = build_barrier_index([{"iri": "b:1", "id": "slow-contract", "label": "Slow contract", "alt_labels": ["CTA delays"]}])
    >>> [t.id for t in tag_note("Site reports CTA delays again.", idx)]
    ['slow-contract']
    >>> tag_note("No CTA delays this time.", idx)
    []
    """
    best: dict[str, _Hit] = {}
    for hit in index.hits(text):
        prev = best.get(hit.iri)
        if prev is None or (prev.negated and not hit.negated):
            best[hit.iri] = hit
    out: list[Tag] = []
    for hit in sorted(best.values(), key=lambda h: (h.start, h.iri)):
        if hit.negated and not include_negated:
            continue
        cid, label = index.info[hit.iri]
        out.append(
            Tag(
                iri=hit.iri,
                id=cid,
                label=label,
                phrase=text[hit.start : hit.end],
                start=hit.start,
                end=hit.end,
                confidence=hit.confidence,
                negated=hit.negated,
            )
        )
    return out


def note_tags(text: str, index: BarrierIndex) -> dict[str, float]:
    """{barrier IRI: confidence} of the non-negated mentions (the fast path the generator uses)."""
    return index.tags(text)


# --- sentiment ---------------------------------------------------------------------------------------

_analyzer: Any = None
_analyzer_lock = threading.Lock()
_sentiment_cache: dict[str, float | None] = {}
_SENTIMENT_CACHE_SIZE = 200_000


def _vader() -> Any:
    global _analyzer
    if _analyzer is None:
        with _analyzer_lock:
            if _analyzer is None:
                from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

                _analyzer = SentimentIntensityAnalyzer()
    return _analyzer


_MISSING = object()


def _sentence_sentiment(sentence: str) -> float | None:
    """VADER compound of one sentence; None for a sentence of fewer than two words (cached)."""
    value = _sentiment_cache.get(sentence, _MISSING)
    if value is _MISSING:
        stripped = sentence.strip()
        value = float(_vader().polarity_scores(stripped)["compound"]) if len(_TOKEN.findall(stripped)) >= 2 else None
        if len(_sentiment_cache) >= _SENTIMENT_CACHE_SIZE:
            _sentiment_cache.clear()
        _sentiment_cache[sentence] = value
    return value  # type: ignore[return-value]


def sentiment(text: str) -> float:
    """Mean VADER compound score of the note's sentences (those with two or more words), in [-1, 1]; 0 for none.

    >>> sentiment("Great call, the site is happy.") > 0 > sentiment("Coordinator frustrated and angry.")
    True
    """
    scores = [v for v in map(_sentence_sentiment, _SENTENCE.findall(text or "")) if v is not None]
    if not scores:
        return 0.0
    return round(sum(scores) / len(scores), 4)


class InteractionScore(NamedTuple):
    """What a note says: its barrier tags and its sentiment (unpacks as ``tags, sentiment``)."""

    tags: list[Tag]
    sentiment: float


def score_interaction(snapshot: Snapshot | GraphStore, note: str) -> InteractionScore:
    """Tags and sentiment of a note about to be logged (POST /interactions stores the tags as
    ``CONCERNS {source: 'tagged', confidence}`` and the sentiment on the Interaction)."""
    snap = as_snapshot(snapshot)
    return InteractionScore(tag_note(note or "", barrier_index(snap)), sentiment(note or ""))


# --- the engagement index ------------------------------------------------------------------------------


def as_snapshot(source: Snapshot | GraphStore) -> Snapshot:
    """The snapshot itself, or the current snapshot of a store."""
    return source if isinstance(source, Snapshot) else get_snapshot(source)


def parse_day(value: Any) -> float | None:
    """Days since 1970-01-01 UTC of an ISO date or date-time (naive values are taken as UTC)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        dt = datetime.fromisoformat(value)  # reads a trailing Z as UTC (Python 3.11+)
    except ValueError:
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - _EPOCH).total_seconds() / 86400.0


def day_to_iso(day: float) -> str:
    return datetime.fromtimestamp(day * 86400.0, tz=UTC).isoformat()


@dataclass(frozen=True, slots=True)
class Mention:
    """One interaction's mention of one barrier."""

    source: str  # observed | tagged (stored) | note (found in the text now, not stored)
    severity: float
    confidence: float
    stored: bool

    @property
    def weight(self) -> float:
        return self.severity * self.confidence


@dataclass(slots=True)
class InteractionRecord:
    id: str
    site: str
    day: float
    occurred_at: str
    channel: str | None
    outcome: str | None
    note: str
    stored_sentiment: float | None
    tactic: str | None
    investigator: str | None
    study: str | None
    mentions: dict[str, Mention]


@dataclass
class EngagementIndex:
    """The interactions of every site, with their barrier mentions, sorted by time (cached per snapshot)."""

    by_site: dict[str, list[InteractionRecord]]
    reference_day: float | None  # the end of the latest interaction's UTC day (reference_day_of)
    barrier_meta: dict[str, dict[str, Any]]  # iri -> {id, label, severity, category}
    _activity: dict[tuple[str, float], dict[str, BarrierActivity]] = field(default_factory=dict, repr=False)
    _sentiment: dict[str, float] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def records(self, site_id: str) -> list[InteractionRecord]:
        return self.by_site.get(site_id, [])

    def note_sentiment(self, rec: InteractionRecord) -> float:
        if rec.stored_sentiment is not None:
            return rec.stored_sentiment
        value = self._sentiment.get(rec.id)
        if value is None:
            value = sentiment(rec.note)
            self._sentiment[rec.id] = value
        return value

    @property
    def reference_date(self) -> str | None:
        return None if self.reference_day is None else day_to_iso(self.reference_day)


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _barrier_meta(snapshot: Snapshot) -> dict[str, dict[str, Any]]:
    meta: dict[str, dict[str, Any]] = {}
    for iri, props in snapshot.nodes("Barrier"):
        parents = sorted(v[1] for v, _ in snapshot.out("Barrier", iri, "BROADER"))
        meta[iri] = {
            "id": str(props.get("id") or iri.rsplit("/", 1)[-1]),
            "label": str(props.get("label") or props.get("id") or iri),
            "severity": _num(props.get("severity")),
            "category": props.get("category") if isinstance(props.get("category"), str) else None,
            "deprecated": props.get("deprecated") is True,
            "broader": parents,
        }
    return meta


def _stored_mention(data: Mapping[str, Any], bm: Mapping[str, Any]) -> Mention:
    """The mention a CONCERNS relationship records (its own severity and confidence, else the defaults)."""
    src: str = data["source"] if data.get("source") in ("observed", "tagged") else "observed"
    sev = _num(data.get("severity"))
    if sev is None:
        sev = _num(bm.get("severity"))
    if sev is None:
        sev = DEFAULT_SEVERITY
    conf = _num(data.get("confidence"))
    if conf is None:
        conf = 1.0 if src == "observed" else TAG_CONFIDENCE_STEMMED
    return Mention(src, sev, conf, True)


def _ordered_edge_fields(
    props: Mapping[str, Any], out_edges: Mapping[NodeId, Mapping[Any, Any]], meta: Mapping[str, Mapping[str, Any]]
) -> tuple[str | None, dict[str, Mention]]:
    """An interaction's outcome and stored mentions, its edges read in sorted order: the last APPLIED
    outcome wins, and of several mentions of one barrier the first with the greatest weight."""
    outcome = props.get("outcome") if isinstance(props.get("outcome"), str) else None
    mentions: dict[str, Mention] = {}
    edges = sorted(((v, ek, data) for v, keyed in out_edges.items() for ek, data in keyed.items()), key=lambda e: (e[0], e[1]))
    for (_label, key), ek, data in edges:
        if ek[0] == "APPLIED":
            rel_outcome = data.get("outcome")
            if isinstance(rel_outcome, str) and rel_outcome:
                outcome = rel_outcome
        elif ek[0] == "CONCERNS":
            m = _stored_mention(data, meta.get(key, {}))
            prev = mentions.get(key)
            if prev is None or m.weight > prev.weight:
                mentions[key] = m
    return outcome, mentions


def engagement_index(source: Snapshot | GraphStore) -> EngagementIndex:
    """The engagement index of a snapshot (built once per data version)."""
    snapshot = as_snapshot(source)
    cached = snapshot.cache.get("signals.engagement")
    if cached is not None:
        return cached
    previous = carried(snapshot, "signals.engagement")
    with gc_paused():  # a million records and their dicts, none in a cycle: the collector's passes over them cost a third
        if isinstance(previous, EngagementIndex):
            built = _extended_engagement_index(snapshot, previous, snapshot.cache[LINEAGE_KEY].new_interactions())
        else:
            built = _build_engagement_index(snapshot)
    snapshot.cache["signals.engagement"] = built
    return built


@dataclass(frozen=True)
class EngagementDelta:
    """What a write of interactions only changed in the engagement index (its snapshot's
    :class:`~sitegraph.queries.snapshot.Lineage`), for the indexes built from it to be carried over.

    ``sites``: the sites with new records (every other site's records are the previous ones).
    ``same_reference``: the reference date did not move, so no other site's activity moved either.
    ``applied``: the new records that apply a tactic (they add applications and popularity).
    ``back_dated``: a new record comes before a record with a tactic at its site (it may change when
    that application's episode began).
    When neither, the applications, their episodes and the tactics' popularity
    (:mod:`sitegraph.queries.effectiveness`) are the previous ones (``same_applications``).
    """

    sites: frozenset[str]
    same_reference: bool
    applied: tuple[InteractionRecord, ...] = ()
    back_dated: bool = False

    @property
    def same_applications(self) -> bool:
        return not self.applied and not self.back_dated


DELTA_KEY = "signals.delta"


def engagement_delta(snapshot: Snapshot) -> EngagementDelta | None:
    """The :class:`EngagementDelta` of a snapshot whose engagement index extends the previous
    snapshot's (None otherwise: then every index is built anew)."""
    if DELTA_KEY in snapshot.cache:
        return snapshot.cache[DELTA_KEY]
    previous = carried(snapshot, "signals.engagement")
    delta = None
    if isinstance(previous, EngagementIndex):
        eng = engagement_index(snapshot)
        sites = frozenset(s for s, recs in eng.by_site.items() if recs is not previous.by_site.get(s))
        applied: list[InteractionRecord] = []
        back_dated = False
        for site in sorted(sites):
            before = previous.records(site)
            known = {r.id for r in before}
            last = max((_in_time_order(r) for r in before if r.tactic), default=None)
            for r in eng.records(site):
                if r.id in known:
                    continue
                if r.tactic:
                    applied.append(r)
                back_dated |= last is not None and _in_time_order(r) <= last
        delta = EngagementDelta(sites, eng.reference_day == previous.reference_day, tuple(applied), back_dated)
    snapshot.cache[DELTA_KEY] = delta
    return delta


def _in_time_order(r: InteractionRecord) -> tuple[float, str]:
    """A site's records are kept sorted by this key (day, then id: a total order)."""
    return (r.day, r.id)


def _build_engagement_index(snapshot: Snapshot) -> EngagementIndex:
    meta = _barrier_meta(snapshot)
    by_site, latest = _interaction_records(snapshot, sorted(n for n in snapshot.graph._node if n[0] == "Interaction"), meta)
    for recs in by_site.values():
        recs.sort(key=_in_time_order)
    return EngagementIndex(by_site=dict(by_site), reference_day=reference_day_of(latest), barrier_meta=meta)


def _extended_engagement_index(snapshot: Snapshot, previous: EngagementIndex, new: list[str]) -> EngagementIndex:
    """The index of ``snapshot`` from its previous snapshot's: the write between them only added the
    interactions ``new`` (:class:`~sitegraph.queries.snapshot.Lineage`), so every other record, the
    barriers' metadata and the note tags are the same, and only the sites of the new interactions get
    a new list. The records are built by the same code as a full build's; the result is equal to a full
    build of ``snapshot`` (the sites may come in another order: readers look sites up, or sort them).
    """
    meta = previous.barrier_meta
    added, latest = _interaction_records(snapshot, [("Interaction", key) for key in new], meta)
    ref = reference_day_of(latest)
    by_site = dict(previous.by_site)  # the other sites' lists are shared, never changed
    for site, recs in added.items():
        merged = [*by_site.get(site, []), *recs]
        merged.sort(key=_in_time_order)
        by_site[site] = merged
    if ref is None or (previous.reference_day is not None and previous.reference_day >= ref):
        ref = previous.reference_day
    return EngagementIndex(by_site=by_site, reference_day=ref, barrier_meta=meta)


def reference_day_of(latest_day: float | None) -> float | None:
    """The reference day of data whose latest interaction is at ``latest_day`` (days since 1970-01-01
    UTC): the end of that UTC day, i.e. the next midnight UTC (an interaction at exactly 00:00 UTC
    keeps that midnight). Every write dated the same UTC day leaves it where it is."""
    return None if latest_day is None else float(math.ceil(latest_day))


def _interaction_records(
    snapshot: Snapshot, nids: list[NodeId], meta: dict[str, dict[str, Any]]
) -> tuple[defaultdict[str, list[InteractionRecord]], float | None]:
    """The records of the interactions ``nids`` by site (in ``nids`` order, not sorted yet), and their latest day."""
    g = snapshot.graph
    succ = g._succ  # {u: {v: {(type, identity): props}}}: networkx's adjacency, read directly (the views cost more)
    index = barrier_index(snapshot)
    by_site: defaultdict[str, list[InteractionRecord]] = defaultdict(list)
    note_cache: dict[str, dict[str, float]] = {}  # tags of each distinct note, for this build only
    ref: float | None = None
    node = g._node
    for nid in nids:
        props = node[nid]
        day = parse_day(props.get("occurred_at"))
        if day is None:
            continue
        outcome = props.get("outcome") if isinstance(props.get("outcome"), str) else None
        # One pass over the edges in storage order. Every field but two is order-free (the least key);
        # the two that are not (the last APPLIED outcome, the first best mention of a barrier) are
        # read again in sorted edge order when an interaction has more than one such edge (rare).
        site = investigator = study = tactic = None
        mentions: dict[str, Mention] = {}
        applied_outcomes = 0
        clash = False
        for v, keyed in succ[nid].items():
            key = v[1]
            for ek, data in keyed.items():
                rtype = ek[0]
                if rtype == "WITH_SITE":
                    site = key if site is None else min(site, key)
                elif rtype == "WITH_INVESTIGATOR":
                    investigator = key if investigator is None else min(investigator, key)
                elif rtype == "ABOUT_STUDY":
                    study = key if study is None else min(study, key)
                elif rtype == "APPLIED":
                    tactic = key if tactic is None else min(tactic, key)
                    rel_outcome = data.get("outcome")
                    if isinstance(rel_outcome, str) and rel_outcome:
                        outcome = rel_outcome
                        applied_outcomes += 1
                elif rtype == "CONCERNS":
                    if key in mentions or v[0] != "Barrier":
                        clash = True
                    else:
                        mentions[key] = _stored_mention(data, meta.get(key, {}))
        if clash or applied_outcomes > 1:
            outcome, mentions = _ordered_edge_fields(props, succ[nid], meta)
        elif len(mentions) > 1:
            mentions = dict(sorted(mentions.items()))  # the sorted edge order (sums over mentions follow it)
        if site is None:
            continue
        note = props.get("note") if isinstance(props.get("note"), str) else ""
        if note:
            found = note_cache.get(note)
            if found is None:
                found = note_cache[note] = note_tags(note, index)  # read only: shared by identical notes
            for iri, conf in found.items():
                if iri in mentions:
                    continue
                note_sev = _num(meta.get(iri, {}).get("severity"))
                mentions[iri] = Mention("note", DEFAULT_SEVERITY if note_sev is None else note_sev, conf, False)
        channel = props.get("channel") if isinstance(props.get("channel"), str) else None
        by_site[site].append(
            InteractionRecord(
                id=nid[1],
                site=site,
                day=day,
                occurred_at=str(props.get("occurred_at")),
                channel=channel,
                outcome=outcome,
                note=note,
                stored_sentiment=_num(props.get("sentiment")),
                tactic=tactic,
                investigator=investigator,
                study=study,
                mentions=mentions,
            )
        )
        ref = day if ref is None else max(ref, day)
    return by_site, ref


def reference_date(source: Snapshot | GraphStore) -> str | None:
    """The end of the latest interaction's UTC day (:func:`reference_day_of`): the 'now' that ages are measured from."""
    return engagement_index(source).reference_date


# --- barrier activity -------------------------------------------------------------------------------


def _require_site(snapshot: Snapshot, site_id: str) -> dict[str, Any]:
    props = snapshot.node("Site", site_id)
    if props is None:
        raise NotFoundError(f"no site with id {site_id!r}")
    return props


def _activity_of(eng: EngagementIndex, site_id: str, half_life_days: float) -> dict[str, BarrierActivity]:
    key = (site_id, half_life_days)
    cached = eng._activity.get(key)
    if cached is not None:
        return cached
    recs = eng.records(site_id)
    ref = eng.reference_day
    out: dict[str, BarrierActivity] = {}
    if recs and ref is not None:
        last_resolution: dict[str, float] = {}
        for r in recs:
            if r.outcome == "resolved":
                for iri in r.mentions:
                    last_resolution[iri] = max(last_resolution.get(iri, r.day), r.day)
        acc: dict[str, list[Any]] = {}
        for r in recs:
            decay = 0.5 ** (max(0.0, ref - r.day) / half_life_days)
            for iri in sorted(r.mentions):
                m = r.mentions[iri]
                a = acc.setdefault(iri, [0.0, 0, 0, 0, [], None, None])
                if r.outcome != "resolved":
                    w = m.weight * decay
                    if last_resolution.get(iri, -math.inf) > r.day:
                        w *= RESOLVED_DISCOUNT
                    a[0] += w
                a[1] += 1
                if m.source == "observed":
                    a[2] += 1
                else:
                    a[3] += 1
                a[4].append(m.severity)
                a[5] = r.occurred_at
                a[6] = r.id
        for iri, (activity, mentions, obs, tags, sevs, last, last_id) in acc.items():
            bm = eng.barrier_meta.get(iri, {})
            act = round(activity, 6)
            out[iri] = BarrierActivity(
                iri=iri,
                id=bm.get("id", iri.rsplit("/", 1)[-1]),
                label=bm.get("label", iri),
                category=bm.get("category"),
                activity=act,
                active=act >= ACTIVE_THRESHOLD,
                mentions=mentions,
                observations=obs,
                tags=tags,
                severity=round(sum(sevs) / len(sevs), 4) if sevs else None,
                last_seen=last,
                last_interaction_id=last_id,
            )
    with eng._lock:
        eng._activity[key] = out
    return out


def site_barrier_activity(
    source: Snapshot | GraphStore, site_id: str, *, half_life_days: float = HALF_LIFE_DAYS, active_only: bool = False
) -> list[BarrierActivity]:
    """Every barrier mentioned at the site with its activity, most active first (ties by IRI).

    :class:`NotFoundError` for an unknown site; an empty list for a site without interactions.
    """
    snapshot = as_snapshot(source)
    _require_site(snapshot, site_id)
    rows = list(_activity_of(engagement_index(snapshot), site_id, half_life_days).values())
    if active_only:
        rows = [r for r in rows if r.active]
    rows.sort(key=lambda r: (-r.activity, r.iri))
    return rows


def active_barriers(source: Snapshot | GraphStore, site_id: str, *, limit: int = 8) -> list[BarrierActivity]:
    """The site's active barriers (activity ≥ :data:`ACTIVE_THRESHOLD`), most active first."""
    return site_barrier_activity(source, site_id, active_only=True)[:limit]


def _activity_sums(eng: EngagementIndex, site_id: str, half_life_days: float) -> dict[str, float]:
    """{barrier IRI: activity rounded to 6 decimals} of one site: :func:`_activity_of`'s sum, same order, no models."""
    recs = eng.records(site_id)
    ref = eng.reference_day
    if not recs or ref is None:
        return {}
    last_resolution: dict[str, float] = {}
    for r in recs:
        if r.outcome == "resolved":
            for iri in r.mentions:
                last_resolution[iri] = max(last_resolution.get(iri, r.day), r.day)
    acc: dict[str, float] = {}
    for r in recs:
        decay = 0.5 ** (max(0.0, ref - r.day) / half_life_days)
        for iri in sorted(r.mentions):
            total = acc.get(iri, 0.0)
            if r.outcome != "resolved":
                w = r.mentions[iri].weight * decay
                if last_resolution.get(iri, -math.inf) > r.day:
                    w *= RESOLVED_DISCOUNT
                total += w
            acc[iri] = total
    return {iri: round(v, 6) for iri, v in acc.items()}


@dataclass(frozen=True)
class ActivityTable:
    """Barrier activity of every site at one half-life, as a compressed sparse row table (sites in key order).

    Row ``i`` holds the barriers mentioned at site ``sites[i]`` (``cols[indptr[i]:indptr[i + 1]]``, indexes
    into ``barriers``, ascending) with their activity rounded to 6 decimals, exactly as
    :func:`site_barrier_activity` reports it; a barrier whose mentions were all resolved is present with 0.
    """

    sites: list[str]
    barriers: list[str]
    indptr: Any  # int64 (n_sites + 1)
    cols: Any  # int64
    values: Any  # float64

    def dense(self) -> Any:
        import numpy as np

        matrix = np.zeros((len(self.sites), len(self.barriers)), dtype=np.float64)
        rows = np.repeat(np.arange(len(self.sites)), np.diff(self.indptr))
        matrix[rows, self.cols] = self.values
        return matrix


def activity_table(source: Snapshot | GraphStore, *, half_life_days: float = HALF_LIFE_DAYS) -> ActivityTable:
    """The :class:`ActivityTable` of every site (cached per snapshot)."""

    snapshot = as_snapshot(source)
    key = f"signals.activity_table.{half_life_days}"
    cached = snapshot.cache.get(key)
    if cached is not None:
        return cached
    eng = engagement_index(snapshot)
    previous = carried(snapshot, key)
    delta = engagement_delta(snapshot) if isinstance(previous, ActivityTable) else None
    with gc_paused():
        if isinstance(previous, ActivityTable) and delta is not None and delta.same_reference:
            built = _updated_activity_table(previous, eng, half_life_days, delta.sites)
        else:
            built = _build_activity_table(snapshot, eng, half_life_days)
    snapshot.cache[key] = built
    return built


def _activity_row(eng: EngagementIndex, site: str, half_life_days: float, col: dict[str, int]) -> list[tuple[int, float]]:
    return sorted((col[iri], v) for iri, v in _activity_sums(eng, site, half_life_days).items() if iri in col)


def _updated_activity_table(
    previous: ActivityTable, eng: EngagementIndex, half_life_days: float, sites: frozenset[str]
) -> ActivityTable:
    """``previous`` with the rows of ``sites`` computed again: the rest are the same when only those
    sites have new records and the reference date stayed (:class:`EngagementDelta`)."""
    import numpy as np

    col = {iri: j for j, iri in enumerate(previous.barriers)}
    row_of = {s: i for i, s in enumerate(previous.sites)}
    changed = sorted(row_of[s] for s in sites if s in row_of)
    counts = np.diff(previous.indptr)
    cols: list[Any] = []
    values: list[Any] = []
    at = 0
    for i in changed:
        row = _activity_row(eng, previous.sites[i], half_life_days, col)
        lo, hi = int(previous.indptr[i]), int(previous.indptr[i + 1])
        cols += [previous.cols[at:lo], np.array([c for c, _ in row], dtype=np.int64)]
        values += [previous.values[at:lo], np.array([v for _, v in row], dtype=np.float64)]
        counts[i] = len(row)
        at = hi
    cols.append(previous.cols[at:])
    values.append(previous.values[at:])
    indptr = np.zeros(len(previous.sites) + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return ActivityTable(previous.sites, previous.barriers, indptr, np.concatenate(cols), np.concatenate(values))


def _build_activity_table(snapshot: Snapshot, eng: EngagementIndex, half_life_days: float) -> ActivityTable:
    import numpy as np

    sites = [k for k, _ in snapshot.nodes("Site")]
    barriers = sorted(eng.barrier_meta)
    col = {iri: j for j, iri in enumerate(barriers)}
    indptr = [0]
    cols: list[int] = []
    values: list[float] = []
    for site in sites:
        row = _activity_row(eng, site, half_life_days, col)
        cols += [c for c, _ in row]
        values += [v for _, v in row]
        indptr.append(len(cols))
    return ActivityTable(
        sites=sites,
        barriers=barriers,
        indptr=np.array(indptr, dtype=np.int64),
        cols=np.array(cols, dtype=np.int64),
        values=np.array(values, dtype=np.float64),
    )


def activity_vectors(
    source: Snapshot | GraphStore, *, half_life_days: float = HALF_LIFE_DAYS
) -> tuple[list[str], list[str], Any]:
    """(site ids, barrier IRIs, sites × barriers activity matrix) over every site (cached per snapshot)."""
    snapshot = as_snapshot(source)
    key = f"signals.activity_vectors.{half_life_days}"
    cached = snapshot.cache.get(key)
    if cached is not None:
        return cached
    table = activity_table(snapshot, half_life_days=half_life_days)
    result = (table.sites, table.barriers, table.dense())
    snapshot.cache[key] = result
    return result


# --- channels and the friction summary ------------------------------------------------------------------


def site_channel_stats(source: Snapshot | GraphStore, site_id: str) -> list[ChannelStat]:
    """How the site responds on each channel, best first: tactic success (smoothed) and note sentiment."""
    snapshot = as_snapshot(source)
    _require_site(snapshot, site_id)
    return [ChannelStat(**row._asdict()) for row in _channel_rows(engagement_index(snapshot), site_id)]


class _ChannelRow(NamedTuple):
    channel: str
    interactions: int
    mean_sentiment: float | None
    tactic_tries: int
    tactic_successes: int
    score: float


def _channel_rows(eng: EngagementIndex, site_id: str) -> list[_ChannelRow]:
    """:func:`site_channel_stats` as plain tuples, best first."""
    acc: dict[str, list[float]] = {}
    for r in eng.records(site_id):
        if not r.channel:
            continue
        a = acc.setdefault(r.channel, [0, 0.0, 0, 0])
        a[0] += 1
        a[1] += eng.note_sentiment(r)
        if r.tactic and r.outcome in KNOWN_OUTCOMES:
            a[2] += 1
            if r.outcome in SUCCESS_OUTCOMES:
                a[3] += 1
    out: list[_ChannelRow] = []
    for channel, (n, sent_sum, tries, succ) in acc.items():
        success = (succ + 1) / (tries + 2)  # Laplace-smoothed success rate
        mood = (sent_sum / (n + 2) + 1) / 2  # mean sentiment shrunk towards neutral, mapped to [0, 1]
        score = round(0.6 * success + 0.4 * mood, 6)
        out.append(
            _ChannelRow(
                channel=channel,
                interactions=int(n),
                mean_sentiment=round(sent_sum / n, 4) if n else None,
                tactic_tries=int(tries),
                tactic_successes=int(succ),
                score=score,
            )
        )
    out.sort(key=lambda c: (-c.score, c.channel))
    return out


def best_channel(source: Snapshot | GraphStore, site_id: str, *, min_interactions: int = 3) -> tuple[str | None, str]:
    """(channel, reason): the channel the site responds best to, from outcomes and sentiment."""
    snapshot = as_snapshot(source)
    _require_site(snapshot, site_id)
    stats = [c for c in _channel_rows(engagement_index(snapshot), site_id) if c.interactions >= min_interactions]
    if not stats:
        return None, f"fewer than {min_interactions} interactions on any channel"
    best = stats[0]
    parts = [f"{best.tactic_successes}/{best.tactic_tries} tactics succeeded"] if best.tactic_tries else []
    if best.mean_sentiment is not None:
        parts.append(f"mean note sentiment {best.mean_sentiment:+.2f} over {best.interactions} interactions")
    others = ", ".join(f"{c.channel} {c.score:.2f}" for c in stats[1:4])
    reason = f"best response on {best.channel} (score {best.score:.2f}: " + "; ".join(parts) + ")"
    if others:
        reason += f"; next: {others}"
    return best.channel, reason


def site_friction_summary(source: Snapshot | GraphStore, site_id: str, *, top: int = 3) -> FrictionSummary:
    """Top active barriers, the trend, the last contact and the mean sentiment of recent notes."""
    snapshot = as_snapshot(source)
    _require_site(snapshot, site_id)
    eng = engagement_index(snapshot)
    recs = eng.records(site_id)
    ref = eng.reference_day
    activity = site_barrier_activity(snapshot, site_id)
    active = [a for a in activity if a.active]
    recent = previous = 0.0
    n90 = 0
    sentiments: list[float] = []
    if ref is not None:
        for r in recs:
            age = ref - r.day
            weight = sum(m.weight for m in r.mentions.values()) if r.outcome != "resolved" else 0.0
            if age <= TREND_WINDOW_DAYS:
                recent += weight
                n90 += 1
                sentiments.append(eng.note_sentiment(r))
            elif age <= 2 * TREND_WINDOW_DAYS:
                previous += weight
    if not sentiments:
        sentiments = [eng.note_sentiment(r) for r in recs]
    if recent == 0 and previous == 0:
        trend = "none"
    elif recent > 1.25 * previous:
        trend = "rising"
    elif recent < 0.8 * previous:
        trend = "falling"
    else:
        trend = "stable"
    last = recs[-1] if recs else None
    sent_avg = round(sum(sentiments) / len(sentiments), 4) if sentiments else None
    summary = FrictionSummary(
        site_id=site_id,
        reference_date=eng.reference_date,
        half_life_days=HALF_LIFE_DAYS,
        top_barriers=active[:top],
        active_barriers=len(active),
        trend=trend,
        recent_weight=round(recent, 4),
        previous_weight=round(previous, 4),
        last_contact=last.occurred_at if last else None,
        last_channel=last.channel if last else None,
        interactions=len(recs),
        interactions_90d=n90,
        sentiment_avg=sent_avg,
        sentiment_notes=len(sentiments),
    )
    summary.text = _summary_text(summary)
    return summary


def _summary_text(s: FrictionSummary) -> str:
    if not s.interactions:
        return "No interactions recorded with this site."
    parts: list[str] = []
    if s.top_barriers:
        names = ", ".join(f"{b.label} ({b.activity:.2f})" for b in s.top_barriers)
        parts.append(f"{s.active_barriers} active barrier{'s' if s.active_barriers != 1 else ''}: {names}")
    else:
        parts.append("No active barriers")
    trend_words = {
        "rising": "friction rising",
        "falling": "friction falling",
        "stable": "friction stable",
        "none": "no barrier mentions in the last 180 days",
    }
    parts.append(
        f"{trend_words[s.trend]} ({s.recent_weight:.1f} vs {s.previous_weight:.1f} weighted mentions, "
        "last 90 days vs the 90 before)"
        if s.trend != "none"
        else trend_words["none"]
    )
    if s.last_contact:
        parts.append(f"last contact {s.last_contact[:10]}" + (f" by {s.last_channel}" if s.last_channel else ""))
    if s.sentiment_avg is not None:
        parts.append(
            f"mean note sentiment {s.sentiment_avg:+.2f} over {s.sentiment_notes} note{'s' if s.sentiment_notes != 1 else ''}"
        )
    return "; ".join(parts) + "."
