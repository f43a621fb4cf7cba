"""Name cleaning and matching for the ClinicalTrials.gov loader.

Text folding
    :func:`fold` lower-cases, removes accents (``"Pôrto Alegre"`` -> ``"porto alegre"``) and maps the
    few letters Unicode does not decompose (``ı ł ø æ ß``). Every key below is built from folded text.

Facilities (:func:`normalize_facility`)
    Folded; registry noise removed (``"-Site Number:8400002"``, ``"/ID# 270059"``, a leading site
    number or ``"~"``, parenthesised acronyms such as ``"(SYSUCC)"``); acronyms joined (``"M.D."``,
    ``"M D"`` -> ``"md"``); French/Catalan elisions split (``"d'Hebron"`` -> ``"d hebron"``); ``"&"`` ->
    ``"and"``; apostrophes dropped (``"Women's"`` -> ``"womens"``); other punctuation -> space;
    abbreviations expanded (``st``/``st.`` -> ``saint``, ``ctr`` -> ``center``, ``centre`` -> ``center``,
    ``univ`` -> ``university``, ``hosp`` -> ``hospital``, ...); a leading ``"the"`` and trailing legal
    suffixes (``inc``, ``llc``, ``ltd``, ``gmbh``, ...) dropped.

    Placeholder names that stand for an anonymous site rather than a real place ("Research Site",
    "GSK Investigational Site", "Local Institution - 0058", "CT-155 Study Center", names with a phone
    number) are recognised by :func:`is_placeholder_facility`; the loader skips those location rows.

Facility matching (:class:`SiteMatcher`)
    Rows are blocked by place: folded city (with ``St.`` -> ``Saint``, ``Mt`` -> ``Mount``, all spaces
    and punctuation removed, so ``"Bunkyo-ku"`` = ``"Bunkyō-Ku"`` = ``"Bunkyoku"``) + canonical country
    (``"Korea, Republic of"`` = ``"South Korea"``) + the state for the United States only (where the
    same city name exists in several states and the state is always given). Names are only ever
    compared inside one block, so matching is linear in the number of blocks and quadratic only in
    the (small) number of distinct names of one city.

    Inside a block, two spellings are the same site when:

    1. their normalised names are equal;
    2. they have the same tokens in another order (and at least one distinctive token), or the
       same tokens except one pair of long (5+ letters), digit-free tokens that start alike and are
       near-identical (similarity >= 0.8: ``"hopital"``/``"hospital"``, ``"womans"``/``"womens"``);
    3. containment, decided on the groups formed by rules 1-2: the shorter name occurs as a
       contiguous run of whole tokens in the longer one and has a *distinctive* token, or all its
       tokens occur in the longer one and it has at least two distinctive tokens — and it is
       contained in exactly one other group (a name contained in two different sites of the city is
       ambiguous and left alone).

    A token is distinctive if it is not an institutional word (hospital, university, medical,
    cancer, center, national, saint, first, affiliated, ... in several languages), not a stop word
    and not a word of the city's name. So "MD Anderson Cancer Center" (distinctive: ``md``,
    ``anderson``) joins "University of Texas MD Anderson Cancer Center", while "Seoul National
    University Hospital" (nothing distinctive in Seoul) never absorbs "Seoul National University
    Bundang Hospital", and "Massachusetts General Hospital" / "Brigham and Women's Hospital" share no
    containment at all.

    The site id is ``"site:" + slug(canonical name, city, [US state,] country)`` where the canonical
    name is the shortest normalised name of the group (ties: alphabetical), which does not depend on
    the order the rows were read in. Sites already in the store (``existing_sites``) take part as
    anchors: a group that contains an existing site keeps that site's id, and two existing sites are
    never merged with each other.

People (:func:`parse_person`)
    Degrees (``MD``, ``Ph.D.``, ``MBBS``, ``MD/PhD``, ``FRCPC``, ...) and titles (``Dr.``, ``Prof.``,
    ``Pr``, ``Assoc. Prof``, ...) are removed and the degrees kept; ``"Doe, Jane"`` becomes
    ``"Jane Doe"``; names written all in capitals are re-cased. Boilerplate that is not a person is
    rejected: anything with digits or an e-mail address, role words ("Medical Director", "Clinical
    Trials", "Study Director"), company words ("Pharmaceuticals", "Inc", "GSK", "Pfizer"), names
    containing one of the study's organisational sponsors, and single words. The investigator key is
    the slug of the cleaned name, so ``"Peter J. Schmidt, M.D."`` and ``"Peter J Schmidt"`` are one
    person; ``"Peter Schmidt"`` stays another (no guessing about middle initials).
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from functools import lru_cache
from typing import Any

# --------------------------------------------------------------------------------------------
# Folding and slugs
# --------------------------------------------------------------------------------------------

_SPECIAL_LETTERS = str.maketrans(
    {
        **dict(zip("ıłŁøØđĐð’‘`´–—", "illooddd" + "'" * 4 + "--", strict=True)),
        "æ": "ae",
        "Æ": "ae",
        "œ": "oe",
        "Œ": "oe",
        "ß": "ss",
    }
)


@lru_cache(maxsize=65536)
def fold(text: str) -> str:
    """Lower-case ASCII-ish text: accents removed, curly quotes straightened, whitespace collapsed."""
    if text.isascii():
        return " ".join(text.replace("`", "'").casefold().split())
    text = unicodedata.normalize("NFKD", text.translate(_SPECIAL_LETTERS))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(text.casefold().split())


def slug(text: str) -> str:
    """``"National Cancer Institute (NCI)"`` -> ``"national-cancer-institute-nci"``."""
    return re.sub(r"[^a-z0-9]+", "-", fold(text).replace("'", "")).strip("-")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _word_list(text: str) -> tuple[str, ...]:
    return tuple(text.split())


def _pairs(text: str) -> dict[str, str]:
    return {key: value for key, _, value in (pair.partition("=") for pair in text.split())}


def clean_text(value: Any) -> str | None:
    """A stripped, whitespace-collapsed string, or None for missing/blank values."""
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text or None


# --------------------------------------------------------------------------------------------
# Places
# --------------------------------------------------------------------------------------------

_COUNTRY_ALIASES = {
    "korea, republic of": "South Korea",
    "republic of korea": "South Korea",
    "korea": "South Korea",
    "korea, democratic people's republic of": "North Korea",
    "russian federation": "Russia",
    "turkey (turkiye)": "Turkey",
    "turkiye": "Turkey",
    "czech republic": "Czechia",
    "iran, islamic republic of": "Iran",
    "moldova, republic of": "Moldova",
    "republic of moldova": "Moldova",
    "viet nam": "Vietnam",
    "taiwan, province of china": "Taiwan",
    "hong kong sar": "Hong Kong",
    "united states of america": "United States",
    "usa": "United States",
    "u.s.a.": "United States",
    "us": "United States",
    "uk": "United Kingdom",
    "great britain": "United Kingdom",
    "england": "United Kingdom",
    "scotland": "United Kingdom",
    "wales": "United Kingdom",
    "northern ireland": "United Kingdom",
    "macedonia, the former yugoslav republic of": "North Macedonia",
    "macedonia": "North Macedonia",
    "cote d'ivoire": "Côte d'Ivoire",
    "ivory coast": "Côte d'Ivoire",
    "tanzania, united republic of": "Tanzania",
    "syrian arab republic": "Syria",
    "lao people's democratic republic": "Laos",
    "congo, the democratic republic of the": "Democratic Republic of the Congo",
    "venezuela, bolivarian republic of": "Venezuela",
    "bolivia, plurinational state of": "Bolivia",
}

US = "United States"


@lru_cache(maxsize=1024)
def canonical_country(country: str | None) -> str | None:
    """One spelling per country (``"Korea, Republic of"`` -> ``"South Korea"``)."""
    text = clean_text(country)
    if text is None:
        return None
    return _COUNTRY_ALIASES.get(fold(text), text)


_PLACE_TOKENS = {"st": "saint", "ste": "sainte", "mt": "mount", "ft": "fort"}


@lru_cache(maxsize=16384)
def place_key(text: str | None) -> str:
    """A city/state/country key: folded, abbreviations expanded, every non-alphanumeric removed."""
    if not text:
        return ""
    tokens = re.sub(r"[^a-z0-9]+", " ", fold(text).replace("'", "")).split()
    return "".join(_PLACE_TOKENS.get(t, t) for t in tokens)


@lru_cache(maxsize=16384)
def place_tokens(text: str | None) -> frozenset[str]:
    """The words of a place name (to treat them as non-distinctive inside that place's block)."""
    if not text:
        return frozenset()
    return frozenset(_PLACE_TOKENS.get(t, t) for t in re.sub(r"[^a-z0-9]+", " ", fold(text).replace("'", "")).split())


# --------------------------------------------------------------------------------------------
# Facilities
# --------------------------------------------------------------------------------------------

_FACILITY_TOKENS = _pairs(
    "st=saint ste=sainte mt=mount ft=fort ctr=center cntr=center centre=center cent=center hosp=hospital univ=university "
    "inst=institute natl=national nat=national intl=international dept=department hlth=health med=medical coll=college "
    "ca=cancer onc=oncology assoc=associates svcs=services sch=school"
)
_LEGAL_SUFFIXES = _words(
    "inc incorporated llc pllc pc pa ltd limited lp llp corp corporation co gmbh ag sa srl spa bv nv plc pty sl sas sarl kk "
    "as ab oy jsc sp z oo spolka sro kft zrt doo ooo"
)
_SITE_NUMBER = re.compile(r"[-\s,/]*\b(?:site\s*(?:number|no\.?|#)?|id)\s*[:#]?\s*\d+\s*$", re.IGNORECASE)
_LEADING_NUMBER = re.compile(r"^\s*\d{3,}\b[\s\-:.]*(?=\S)")
_DOTTED_ACRONYM = re.compile(r"\b(?:[a-z]\.){2,}(?![a-z])")
_ELISION = re.compile(r"\b([dl])'(?=[a-z])")
_PHONE = re.compile(r"\d{3}[\s.\-)]*\d{3}[\s.\-]*\d{3,4}")


@lru_cache(maxsize=65536)
def normalize_facility(name: str) -> str:
    """The matching form of a facility name (see the module docstring)."""
    text = fold(name)
    text = _LEADING_NUMBER.sub("", _SITE_NUMBER.sub("", text))
    text = re.sub(r"\([^)]*\)", " ", text)
    text = _DOTTED_ACRONYM.sub(lambda m: m.group(0).replace(".", ""), text)
    text = _ELISION.sub(r"\1 ", text)
    text = text.replace("&", " and ").replace("+", " and ").replace("'", "")
    tokens = [_FACILITY_TOKENS.get(t, t) for t in _join_letters(re.sub(r"[^a-z0-9]+", " ", text).split())]
    if tokens and tokens[0] == "the":
        tokens = tokens[1:]
    while len(tokens) > 1 and tokens[-1] in _LEGAL_SUFFIXES | {"and", "of", "the"}:
        tokens.pop()
    return " ".join(tokens)


def display_facility(raw: str) -> str:
    """A facility spelling without registry noise, for display ("MD Anderson Cancer Center-Site Number:8400002" ->
    "MD Anderson Cancer Center"); case and punctuation are kept."""
    text = re.sub(r"\(\s*site\b[^)]*\)", " ", raw, flags=re.IGNORECASE)
    text = _LEADING_NUMBER.sub("", _SITE_NUMBER.sub("", text))
    text = " ".join(text.split()).strip(" ~-,/")
    return text or " ".join(raw.split())


def _join_letters(tokens: list[str]) -> list[str]:
    """Runs of single letters are one acronym: ``"m d anderson"`` -> ``"md anderson"``."""
    out: list[str] = []
    run = ""
    for tok in [*tokens, ""]:
        if len(tok) == 1 and tok.isalpha():
            run += tok
            continue
        if run:
            out.append(run)
            run = ""
        if tok:
            out.append(tok)
    return out


# "<sponsor words> Investigational Site": the prefix may not contain an institutional word, so that
# "Johns Hopkins University Clinical Research Site" stays a real place.
_PLACEHOLDER_PREFIXED = [
    re.compile(
        r"^((?:\S+ ){0,3})(?:research|investigational|investigative|investigator|investigators|study|clinical|"
        r"clinical research|clinical trial|trial|test) sites?(?: \d+)?$"
    ),
    re.compile(r"^((?:\S+ ){0,2})(?:investigational|study) centers?(?: \d+)?$"),
]
_PLACEHOLDER_PATTERNS = [
    re.compile(r"^local institution(?: \d+)?$"),
    re.compile(r"^(?:site|site number|research facility)(?: \d+)?$"),
    re.compile(r"\bfor (?:additional |more )?information\b"),
]


def is_placeholder_facility(raw: str, normalized: str) -> bool:
    """True for names that stand for an anonymous site ("Research Site", "Local Institution - 0058")."""
    if not normalized or "@" in raw or _PHONE.search(raw):
        return True
    for pattern in _PLACEHOLDER_PREFIXED:
        if (m := pattern.match(normalized)) and not set(m.group(1).split()) & _GENERIC_WORDS:
            return True
    return any(p.search(normalized) for p in _PLACEHOLDER_PATTERNS)


# Words that say what kind of place something is, not which one (several languages).
_GENERIC_WORDS = _words(
    """
    hospital hospitals hopital hopitaux hospitalier hospitaliere hospitalario hospitalaria hospitalar hospitais ospedale
    ospedaliera ospedaliero ospedali krankenhaus klinikum kliniken klinik klinika klinikai uniklinik universitatsklinikum
    nemocnice szpital spital spitalul bolnica ziekenhuis sjukhus sygehus sykehus
    university universities universitaire universitario universitaria universidad universidade universita universitat
    universiteit universitatea universitesi uniwersytet univerzita egyetem
    college school faculty facultad faculdade fakultesi academy academic
    medical medicine medicina medizin medicale medico medicale medizinische health healthcare care clinical clinic clinics
    clinico clinica clinique poliklinik policlinico
    center centers centro centre centrum central centrale
    cancer oncology oncologia oncologico oncologique tumor
    institute institutes institut instituto istituto
    general regional national nacional nazionale international provincial municipal city county district state community
    memorial saint sainte san santa sankt santo
    children childrens pediatric paediatric kids womens women mens
    research foundation fondazione fundacion fundacao trust nhs affiliated affiliate
    first second third fourth fifth sixth seventh people peoples
    system systems services service network group associates partners practice office department division unit
    hematology surgery cardiology heart lung eye sciences science private public main campus site branch
    north south east west northern southern eastern western new central upper lower
    service servicio servizio services department departamento departement dienst afdeling abteilung unidad unita unite
    uo uoc sc sod scdu gcp id location pavilion building
    oncology oncologie doncologie oncologica oncologico haematology hematologie ematologia hematologia dhematologie
    dermatology dermatologie pneumology pneumologie pulmonology radiology pediatrics paediatrics immunology allergy urology
    gastroenterology neurology medecine surgery chirurgie
    chu chru chr ch aphp ap hp ao aou asst ausl irccs ico crlcc hcl nhs
    """
)
_STOP_WORDS = _words(
    "the of and for at in on de del della dei degli di du des la le les los las da do dos der die und fur y e i en et a an al el"
)


# Words that make a longer name a *different* place (a branch), not a longer spelling of the same one.
_BRANCH_WORDS = _words(
    "north south east west northeast northwest southeast southwest northern southern eastern western upper lower branch "
    "annex satellite"
)
# Words that say a place is a hospital or a clinical centre rather than a university.
_CARE_WORDS = _words(
    "hospital hospitals hopital hospitalier ospedale ospedaliera krankenhaus klinikum klinik clinic clinics clinica clinique "
    "ziekenhuis szpital nemocnice hastanesi medical cancer health healthcare"
)
# A longer name may add its university affiliation ("X Hospital, Y University") to a hospital's name.
_UNIVERSITY_WORDS = _words(
    "university universities universitaire universitario universitaria universidad universidade universita universitat "
    "universiteit universitatea universitesi uniwersytet univerzita egyetem college school faculty"
)


def distinctive_tokens(tokens: Iterable[str], place_words: set[str]) -> set[str]:
    """Tokens that name *which* place this is (not generic words, stop words, numbers or the city)."""
    return {
        t
        for t in tokens
        if t not in _GENERIC_WORDS and t not in _STOP_WORDS and t not in place_words and not t.isdigit() and len(t) > 1
    }


# --------------------------------------------------------------------------------------------
# Site matching
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Block:
    """Where a facility is: city key, US state key ('' elsewhere), country key."""

    city: str
    state: str
    country: str


@dataclass(frozen=True, order=True)
class FacilityKey:
    """One normalised facility spelling in one place."""

    block: Block
    name: str


@dataclass
class MatchStats:
    """What the matcher did, for logs and reports."""

    spellings: int = 0  # distinct normalised (name, place) keys
    exact_groups: int = 0  # groups after rule 1 (plus existing-site anchors)
    reordered_or_typo: int = 0  # unions made by rule 2
    contained: int = 0  # unions made by rule 3
    ambiguous: int = 0  # names contained in more than one site of their city, left alone
    anchored: int = 0  # keys that matched a site already in the store
    sites: int = 0


class _UnionFind:
    """Union-find over names of one block; a group holds at most one existing-site anchor."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}
        self.anchor: dict[str, str] = {}

    def add(self, item: str, anchor: str | None = None) -> None:
        self.parent.setdefault(item, item)
        if anchor is not None:
            root = self.find(item)
            self.anchor.setdefault(root, anchor)

    def find(self, item: str) -> str:
        root = item
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[item] != root:
            self.parent[item], item = root, self.parent[item]
        return root

    def union(self, a: str, b: str) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        anchor_a, anchor_b = self.anchor.get(ra), self.anchor.get(rb)
        if anchor_a and anchor_b and anchor_a != anchor_b:
            return False
        keep, drop = sorted((ra, rb))
        self.parent[drop] = keep
        anchor = anchor_a or anchor_b
        self.anchor.pop(drop, None)
        if anchor:
            self.anchor[keep] = anchor
        return True

    def groups(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = defaultdict(list)
        for item in sorted(self.parent):
            out[self.find(item)].append(item)
        return out


def block_of(city: str | None, state: str | None, country: str | None) -> Block | None:
    """The matching block of a location, or None without a city or country."""
    city_key, country_name = place_key(city), canonical_country(country)
    if not city_key or not country_name:
        return None
    state_key = place_key(state) if country_name == US else ""
    return Block(city_key, state_key, place_key(country_name))


@dataclass
class _BlockNames:
    names: set[str] = field(default_factory=set)
    anchors: dict[str, str] = field(default_factory=dict)  # normalised name -> existing site id
    place_words: set[str] = field(default_factory=set)  # words of the city's name
    region_words: set[str] = field(default_factory=set)  # words of the state's and country's names


class SiteMatcher:
    """Groups facility spellings into sites (see the module docstring for the rules)."""

    def __init__(self, existing_sites: Iterable[Mapping[str, Any]] = ()) -> None:
        self._blocks: dict[Block, _BlockNames] = defaultdict(_BlockNames)
        self.existing: dict[str, Mapping[str, Any]] = {}
        self.stats = MatchStats()
        self.group_names: dict[str, set[str]] = {}  # site id -> every normalised spelling of it (after resolve)
        for site in sorted(existing_sites, key=lambda s: str(s.get("id", ""))):
            self._add_existing(site)

    def _add_existing(self, site: Mapping[str, Any]) -> None:
        site_id = site.get("id")
        block = block_of(site.get("city"), site.get("state"), site.get("country"))
        if not isinstance(site_id, str) or not site_id or block is None:
            return
        self.existing[site_id] = site
        spellings = [site.get("name"), *(site.get("aliases") or [])]
        entry = self._blocks[block]
        entry.place_words |= place_tokens(site.get("city"))
        entry.region_words |= place_tokens(site.get("state")) | place_tokens(site.get("country"))
        for raw in spellings:
            if isinstance(raw, str) and (norm := normalize_facility(raw)):
                entry.anchors.setdefault(norm, site_id)

    def add(self, facility: str, city: str | None, state: str | None, country: str | None) -> FacilityKey | None:
        """Register one location spelling; None if it has no usable name or place."""
        block = block_of(city, state, country)
        norm = normalize_facility(facility)
        if block is None or not norm:
            return None
        entry = self._blocks[block]
        entry.names.add(norm)
        entry.place_words |= place_tokens(city)
        entry.region_words |= place_tokens(state) | place_tokens(canonical_country(country))
        return FacilityKey(block, norm)

    def resolve(self) -> dict[FacilityKey, str]:
        """The site id of every registered key."""
        out: dict[FacilityKey, str] = {}
        self.stats = MatchStats()
        self.group_names = {}
        for block in sorted(self._blocks):
            out.update(self._resolve_block(block, self._blocks[block]))
        self.stats.spellings = len(out)
        self.stats.sites = len(set(out.values()))
        return out

    # -- one block --------------------------------------------------------------------------
    def _resolve_block(self, block: Block, entry: _BlockNames) -> dict[FacilityKey, str]:
        if not entry.names:
            return {}
        uf = _UnionFind()
        for name, site_id in sorted(entry.anchors.items()):
            uf.add(name, site_id)
        for name in sorted(entry.names):
            uf.add(name)
        for name, site_id in sorted(entry.anchors.items()):  # every spelling of one existing site is one group
            first = min(n for n, s in entry.anchors.items() if s == site_id)
            uf.union(first, name)
        self.stats.exact_groups += len(uf.groups())
        tokens = {name: name.split() for name in uf.parent}
        self.stats.reordered_or_typo += self._merge_variants(uf, tokens, entry.place_words)
        self._merge_contained(uf, tokens, entry.place_words, entry.place_words | entry.region_words)
        return self._ids(block, uf, entry)

    def _merge_variants(self, uf: _UnionFind, tokens: dict[str, list[str]], place_words: set[str]) -> int:
        """Rule 2: same tokens in another order, or one near-identical long token apart."""
        merged = 0
        by_set: dict[frozenset[str], list[str]] = defaultdict(list)
        by_gap: dict[tuple[int, tuple[str, ...]], list[str]] = defaultdict(list)
        for name in sorted(tokens):
            toks = tokens[name]
            if distinctive_tokens(toks, place_words):
                by_set[frozenset(toks)].append(name)
            for i, tok in enumerate(toks):
                if len(tok) >= 5 and not any(ch.isdigit() for ch in tok):
                    by_gap[(i, (*toks[:i], "*", *toks[i + 1 :]))].append(name)
        for names in by_set.values():
            for other in names[1:]:
                merged += uf.union(names[0], other)
        for (i, _), names in sorted(by_gap.items()):
            for a_idx, a in enumerate(names):
                for b in names[a_idx + 1 :]:
                    if _near(tokens[a][i], tokens[b][i]):
                        merged += uf.union(a, b)
        return merged

    def _merge_contained(
        self, uf: _UnionFind, tokens: dict[str, list[str]], place_words: set[str], region_words: set[str]
    ) -> None:
        """Rule 3: a name inside exactly one other group joins it (decided on a snapshot of the groups)."""
        groups = uf.groups()
        index: dict[str, set[str]] = defaultdict(set)
        for name, toks in tokens.items():
            for tok in toks:
                index[tok].add(name)
        unions: list[tuple[str, str]] = []
        for root, members in sorted(groups.items()):
            candidates: set[str] = set()
            for name in members:
                candidates |= self._containers(name, tokens, index, place_words, region_words)
            candidates = {uf.find(c) for c in candidates} - {root}
            if len(candidates) == 1:
                unions.append((root, candidates.pop()))
            elif len(candidates) > 1:
                self.stats.ambiguous += 1
        for a, b in unions:
            self.stats.contained += uf.union(a, b)

    @staticmethod
    def _containers(
        name: str, tokens: dict[str, list[str]], index: dict[str, set[str]], place_words: set[str], region_words: set[str]
    ) -> set[str]:
        toks = tokens[name]
        distinct = distinctive_tokens(toks, place_words)
        if not distinct or len(toks) < 2:
            return set()
        rarest = min(sorted(distinct), key=lambda t: len(index[t]))
        found: set[str] = set()
        for other in index[rarest]:
            other_toks = tokens[other]
            if len(other_toks) <= len(toks):
                continue
            inside = _contiguous(toks, other_toks) or (len(distinct) >= 2 and set(toks) <= set(other_toks))
            if inside and _only_qualifies(set(toks), set(other_toks) - set(toks), region_words):
                found.add(other)
        return found

    def _ids(self, block: Block, uf: _UnionFind, entry: _BlockNames) -> dict[FacilityKey, str]:
        out: dict[FacilityKey, str] = {}
        for root, members in uf.groups().items():
            site_id = uf.anchor.get(root)
            if site_id is None:
                canonical = min(members, key=lambda n: (len(n.split()), len(n), n))
                parts = [canonical, block.city, block.state, block.country]
                site_id = "site:" + slug(" ".join(p for p in parts if p))
            self.group_names.setdefault(site_id, set()).update(members)
            for name in members:
                if name in entry.names:
                    out[FacilityKey(block, name)] = site_id
                    self.stats.anchored += site_id in self.existing
        return out


def _only_qualifies(short: set[str], extra: set[str], place_words: set[str]) -> bool:
    """Whether the words a longer name adds only qualify the shorter one (place, department, affiliation).

    Not if they name a branch ("... East", "... South Sacramento"), nor turn a university into one of its
    hospitals or cancer centres, nor name another institution — unless the shorter name is not a university
    and the additions are its university affiliation ("Seoul St. Mary's Hospital, Catholic University of Korea").
    """
    if extra & _BRANCH_WORDS:
        return False
    if short & _UNIVERSITY_WORDS and not short & _CARE_WORDS and extra & _CARE_WORDS:
        return False  # "X University" is not "X University Hospital" / "X University Cancer Center"
    if not distinctive_tokens(extra, place_words):
        return True
    return bool(extra & _UNIVERSITY_WORDS) and not short & _UNIVERSITY_WORDS


def _near(a: str, b: str) -> bool:
    """Two long words that differ by a typo ("hopital"/"hospital", "womans"/"womens", "faeber"/"farber")."""
    return a[0] == b[0] and SequenceMatcher(None, a, b).ratio() >= 0.8


def _contiguous(short: list[str], long: list[str]) -> bool:
    n = len(short)
    return any(long[i : i + n] == short for i in range(len(long) - n + 1))


# --------------------------------------------------------------------------------------------
# People
# --------------------------------------------------------------------------------------------

_DEGREE_FORMS = _word_list(
    "MD PhD DO MBBS MBChB MBBCh MB ChB BCh DM DNB MCh MS MSc MA MPH MSPH MHS MSCE MSCI MSCR MMSc MHSc MBA MSW MSN BSN BS BSc BA "
    "DSc ScD DrPH DPhil MPhil PharmD RPh EdD PsyD DDS DMD DNP RN NP PA PAC PT DPT OT CNM LCSW FRCP FRCPC FRCPE FRCPI FRCPCH "
    "FRCS FRCSC FRCR FRCPath FRACP FRACS FRANZCR FACP FACS FACC FAHA FCCP FESC FAAN FAAP FCPS FMD MRCP MRCPCH MRCS MMed "
    "MBiomed MM AOCN AOCNP CCRC CRC CCRP DMSc BMBS BM BMedSc"
)
_DEGREES = {d.upper(): d for d in _DEGREE_FORMS}
_DEGREES.update({"MDPHD": "MD", "DRMED": "Dr. med.", "MDRES": "MD"})
_DEGREE_SPLIT = {"MDPHD": ["MD", "PhD"]}
_DEGREE_ORDER = {d: i for i, d in enumerate(_DEGREE_FORMS)}
_TITLES = _words(
    "dr doctor prof professor pr mr mrs ms mme mlle sir dame med assoc associate assist assistant lecturer resident "
    "physician operator master pi puph ph dott dottssa dottore dottoressa dra drssa profssa mudr"
)
_LEADING_TITLES = _words("dr doctor prof professor pr mr mrs ms mme mlle sir dame")
_BOILERPLATE = _words(
    """
    clinical clinic trial trials study studies director directors medical medicine officer responsible
    management transparency registry cares connect operations sciences science department dept team information contact
    center centre sponsor principal investigator investigators pharmaceuticals pharmaceutical pharma therapeutics
    biosciences biotech laboratories laboratory inc ltd llc corp corporation company gmbh plc group hospital university
    institute research development global office desk support services and of for the at
    gsk glaxosmithkline novartis pfizer sanofi astrazeneca abbvie genentech biontech boehringer regeneron squibb ucb msd
    amgen ctgov ctlilly physician
    """
)
_ORG_WORDS = _words(
    """
    university hospital institute center centre clinic foundation pharmaceuticals pharmaceutical pharma therapeutics inc
    ltd llc corp corporation company gmbh plc group network organization organisation association society council college
    school ministry agency trust laboratories biosciences biotech oncology cancer research health
    """
)
_NAME_SUFFIXES = {"jr": "Jr.", "sr": "Sr.", "ii": "II", "iii": "III", "iv": "IV"}


def sort_degrees(degrees: Iterable[str]) -> list[str]:
    """Degrees in a conventional order (MD, PhD, ... then the rest alphabetically), without repeats."""
    return sorted(set(degrees), key=lambda d: (_DEGREE_ORDER.get(d, len(_DEGREE_ORDER)), d))


@dataclass(frozen=True)
class PersonName:
    """A cleaned person name."""

    key: str  # "inv:" + slug
    display: str
    degrees: tuple[str, ...]


def _degree_pieces(token: str) -> list[str] | None:
    """The degrees/titles a suffix token stands for (``"M.D."`` -> ``["MD"]``), or None if it is not one."""
    bare = re.sub(r"[.\s]", "", token)
    if not bare:
        return []
    upper = bare.upper().replace("-", "").replace("/", "")
    if upper in _DEGREE_SPLIT:
        return list(_DEGREE_SPLIT[upper])
    if upper in _DEGREES:
        return [_DEGREES[upper]]
    if bare.casefold().replace("-", "") in _TITLES:
        return ["title"]
    for sep in ("/", "-", "."):
        if sep in token:
            parts = [p for p in token.split(sep) if p.strip()]
            pieces = [_degree_pieces(p) for p in parts]
            if len(parts) > 1 and all(p is not None for p in pieces):
                return [d for p in pieces if p for d in p]
    return None


def _suffix_degrees(part: str) -> list[str] | None:
    """If a comma-separated part holds only degrees/titles, the degrees in it; None otherwise."""
    text = re.sub(r"\bph\.?\s*d\b\.?", "PhD", part, flags=re.IGNORECASE)
    text = re.sub(r"\bm\.?b\.?\s*ch\.?\s*b\b\.?", "MBChB", text, flags=re.IGNORECASE)
    text = re.sub(r"\bm\.?\s*d\b\.?", "MD", text, flags=re.IGNORECASE)
    degrees: list[str] = []
    for token in text.split():
        pieces = _degree_pieces(token)
        if pieces is None:
            return None
        degrees += [p for p in pieces if p != "title"]
    return degrees


_PARTICLES = _words("de del della di da das do dos du der den van von la le y e bin ben al el")


def _recase(tokens: list[str]) -> list[str]:
    """Names written in capitals (or all lower case) get ordinary capitalisation ("JEAN DUPONT" -> "Jean Dupont")."""
    letters = "".join(tokens)
    whole = letters.isupper() or letters.islower()

    def cap(tok: str) -> str:
        return re.sub(r"(^|[-'.])([a-z])", lambda m: m.group(1) + m.group(2).upper(), tok.lower())

    def needs(tok: str) -> bool:
        letters_only = re.sub(r"[^\w]", "", tok)
        if tok.islower():
            return tok not in _PARTICLES or whole
        return whole or (tok.isupper() and len(letters_only) > 2 and "." not in tok)

    return [cap(t) if needs(t) else t for t in tokens]


def _org_core(name: str) -> list[str]:
    toks = normalize_facility(name).split()
    return toks


def is_org_like(name: str) -> bool:
    """A sponsor name that is an organisation (not an individual sponsor-investigator)."""
    toks = normalize_facility(name).split()
    return len(toks) == 1 or any(t in _ORG_WORDS for t in toks)


def parse_person(raw: str | None, *, org_names: Iterable[str] = ()) -> PersonName | None:
    """A person from an official/investigator name, or None for boilerplate (see the module docstring)."""
    text = clean_text(raw)
    if text is None or "@" in text or any(ch.isdigit() for ch in text):
        return None
    text = re.sub(r"\([^)]*\)", " ", text)
    main, *rest = [p.strip() for p in re.split(r"[,;]", text)]
    degrees: list[str] = []
    extra: list[str] = []
    suffix = ""
    for part in rest:
        part = re.sub(r"[^\w\s.\-/']", "", part).strip()
        if not part:
            continue
        found = _suffix_degrees(part)
        if found is not None:
            degrees += found
        elif part.casefold().rstrip(".") in _NAME_SUFFIXES:
            suffix = _NAME_SUFFIXES[part.casefold().rstrip(".")]
        else:
            extra.append(part)
    tokens = _main_tokens(main, degrees)
    tokens = _apply_extra(tokens, extra)
    if suffix:
        tokens.append(suffix)
    if not _is_person(tokens, org_names):
        return None
    display = " ".join(_recase(tokens))
    key = slug(display.replace(".", ""))
    return PersonName("inv:" + key, display, tuple(sort_degrees(degrees)))


def _main_tokens(main: str, degrees: list[str]) -> list[str]:
    """Words of the name part with titles removed and trailing unambiguous degrees moved to ``degrees``."""
    tokens = [t.strip("-") for t in main.split() if t.strip(".-")]
    tokens = [t for t in tokens if t.casefold().strip(".") not in _LEADING_TITLES | {"assoc", "assist", "lecturer", "resident"}]
    while len(tokens) > 1:
        last = tokens[-1]
        bare = last.replace(".", "")
        pieces = _degree_pieces(last)
        if pieces is None or "title" in pieces or (bare.istitle() and len(bare) <= 3) or bare.islower():
            break
        degrees += [p for p in pieces if p != "title"]
        tokens.pop()
    return tokens


def _apply_extra(tokens: list[str], extra: list[str]) -> list[str]:
    """Handle ``"Doe, Jane"`` (swap) and ``"Jane Doe, Doe"`` (repetition dropped)."""
    if not extra:
        return tokens
    seen = {t.casefold() for t in tokens}
    extra = [p for p in extra if not {t.casefold() for t in p.split()} <= seen and not _is_description(p)]
    if len(extra) == 1 and len(tokens) <= 2:
        return [t for t in extra[0].split() if t.casefold().strip(".") not in _LEADING_TITLES] + tokens
    return tokens + [t for p in extra for t in p.split()]


def _is_description(part: str) -> bool:
    """A comma part that describes a job or place ("Head of Oncology"), not a name."""
    words = {re.sub(r"[^a-z]", "", fold(t)) for t in part.split()}
    return bool(words & (_BOILERPLATE | _TITLES | _ORG_WORDS))


def _is_person(tokens: list[str], org_names: Iterable[str]) -> bool:
    if len(tokens) < 2 or len(tokens) > 6:
        return False
    folded = [re.sub(r"[^a-z'\-]", "", fold(t)) for t in tokens]
    if any(t in _BOILERPLATE for t in folded) or any(not t for t in folded):
        return False
    if any(not re.fullmatch(r"[^\W\d_]+(?:['\-.][^\W\d_]*)*\.?", t) for t in tokens):
        return False
    words = normalize_facility(" ".join(tokens)).split()
    for org in org_names:
        core = _org_core(org)
        if core and is_org_like(org) and _contiguous(core, words):
            return False
    return True


# --------------------------------------------------------------------------------------------
# Organisations and conditions
# --------------------------------------------------------------------------------------------

_SPONSOR_SUFFIXES = _LEGAL_SUFFIXES | {"company", "and", "the"}


def sponsor_id(name: str) -> str:
    """``"National Cancer Institute (NCI)"`` -> ``"sponsor:national-cancer-institute-nci"``; legal suffixes dropped."""
    text = re.sub(r"\ba/s\b", "as", fold(name).replace("&", " and "))
    tokens = re.sub(r"[^a-z0-9]+", " ", text.replace("'", "")).split()
    while len(tokens) > 1 and tokens[-1] in _SPONSOR_SUFFIXES:
        tokens.pop()
    return "sponsor:" + "-".join(tokens)


def condition_id(name: str) -> str:
    """``"Non-Small Cell Lung Cancer"`` -> ``"condition:non-small-cell-lung-cancer"``."""
    return "condition:" + slug(name.lower())
