"""The ClinicalTrials.gov loader: formats, normalisation, facility matching, problems, determinism.

Tests marked ``shared`` read the real records in ``../shared/data/ctgov`` and are skipped when that
folder is absent outside CI (under ``CI=true`` they run); everything else uses the demo subset shipped
in the package and the small fixtures in ``tests/data/ctgov`` (synthetic records with made-up NCT ids ``NCT09...``).
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from sitegraph.errors import Problem
from sitegraph.graph.memory import MemoryStore
from sitegraph.graph.store import GraphBatch
from sitegraph.loaders.ctgov import DEMO_CTGOV_DIR, LoadResult, iter_files, norm_phase, norm_status, parse_date, read_ctgov
from sitegraph.loaders.normalize import SiteMatcher, display_facility, normalize_facility, parse_person, sponsor_id
from tests.conftest import SHARED_CTGOV, needs_shared_ctgov

DATA = Path(__file__).parent / "data" / "ctgov"
VALID, BROKEN, MATCHING = DATA / "valid", DATA / "broken", DATA / "matching"
shared = needs_shared_ctgov

MDA = "site:md-anderson-cancer-center-houston-texas-unitedstates"


def rel_counts(batch: GraphBatch) -> Counter[str]:
    return Counter(key.type for key in batch.rels)


def rels(batch: GraphBatch, rel_type: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {(k.start, k.end): props for k, props in batch.rels.items() if k.type == rel_type}


def problems_for(result: LoadResult, name: str) -> list[Problem]:
    return [p for p in result.problems if name in p.source]


def snapshot(batch: GraphBatch) -> tuple[dict[str, Any], dict[Any, Any]]:
    return batch.nodes, batch.rels


@pytest.fixture(scope="module")
def shared_result() -> LoadResult:
    return read_ctgov([SHARED_CTGOV])


@pytest.fixture(scope="module")
def demo_result() -> LoadResult:
    return read_ctgov([DEMO_CTGOV_DIR])


@pytest.fixture(scope="module")
def fixtures_result() -> LoadResult:
    return read_ctgov([DATA])


# --------------------------------------------------------------------------------------------
# Formats, on the real records
# --------------------------------------------------------------------------------------------

SHARED_FORMATS = [
    ("v2_json/partrita__clinicaltrial-watch-tigit__snapshots/NCT04294810_latest.json", "v2", 1),
    ("v2_json/aact/NCT00763412.json", "v2", 1),
    ("v2_json/ctg_exports/dgg32__clinical-trials-public__ctg-studies.json", "v2", 10),
    ("v1_json/aact/covid-19-search.json", "v1", 100),
    ("v1_json/aact/NCT00023673.json", "v1", 1),
    ("xml/aact/NCT02465060.xml", "xml", 1),
    ("xml_zip/ebmdatalab__clinicaltrials-act-tracker__tests__fixtures__data.zip", "xml", 5),
]


@shared
@pytest.mark.parametrize(("relative", "fmt", "studies"), SHARED_FORMATS)
def test_each_format_of_the_shared_records(relative: str, fmt: str, studies: int) -> None:
    result = read_ctgov([SHARED_CTGOV / relative])
    assert result.problems == []
    assert result.studies == studies
    assert {p["source_format"] for p in result.batch.nodes["Study"].values()} == {fmt}
    assert result.batch.nodes.get("Site")
    assert rel_counts(result.batch)["PARTICIPATES_IN"] > 0


@shared
def test_whole_shared_set(shared_result: LoadResult) -> None:
    result = shared_result
    assert result.problems == []
    assert result.skipped == 0
    assert result.studies == 682
    assert len(result.batch.nodes["Study"]) == 682
    assert result.files == len(iter_files([SHARED_CTGOV])) - 1 + 5  # the zip counts as its 5 members
    counts = {label: len(rows) for label, rows in result.batch.nodes.items()}
    assert counts["Site"] < 10_400 * 0.8  # far fewer sites than exact spellings (placeholders skipped, spellings merged)
    assert counts["Investigator"] > 1000
    assert rel_counts(result.batch)["PARTICIPATES_IN"] > 9000


@shared
def test_shared_set_md_anderson_and_boston(shared_result: LoadResult) -> None:
    sites = shared_result.batch.nodes["Site"]
    aliases = set(sites[MDA]["aliases"])
    assert sites[MDA]["name"] in {"MD Anderson Cancer Center", "University of Texas MD Anderson Cancer Center"}
    assert {
        "MD Anderson Cancer Center",
        "University of Texas MD Anderson Cancer Center",
        "M.D. Anderson Cancer Center",
    } <= aliases
    assert "site:md-anderson-cancer-center-madrid-spain" in sites  # same name, other city: another site
    boston = {k: v for k, v in sites.items() if "-boston-massachusetts-" in k}
    mgh = [k for k, v in boston.items() if "Massachusetts General Hospital" in v["aliases"]]
    bwh = [k for k, v in boston.items() if "Brigham and Women's Hospital" in v["aliases"]]
    assert len(mgh) == len(bwh) == 1
    assert mgh != bwh


@shared
def test_shared_set_types(shared_result: LoadResult) -> None:
    for props in shared_result.batch.nodes["Study"].values():
        assert "enrollment" not in props or isinstance(props["enrollment"], int)
        for date_field in ("start_date", "completion_date"):
            if date_field in props:
                assert parse_date(props[date_field]) == props[date_field]
    for props in shared_result.batch.nodes["Site"].values():
        assert isinstance(props.get("lat", 0.0), float)
        assert props["aliases"] == sorted(props["aliases"])


# --------------------------------------------------------------------------------------------
# The demo subset shipped in the package
# --------------------------------------------------------------------------------------------


def test_demo_subset(demo_result: LoadResult) -> None:
    result = demo_result
    assert result.problems == []
    assert 60 <= result.studies <= 120
    formats = Counter(p["source_format"] for p in result.batch.nodes["Study"].values())
    assert set(formats) == {"v2", "v1", "xml"}
    assert (DEMO_CTGOV_DIR / "SOURCES.md").is_file()
    suffixes = {p.suffix for p in iter_files([DEMO_CTGOV_DIR])}
    assert suffixes == {".json", ".xml", ".zip"}
    # connected: many sites run several of the studies
    per_site = Counter(start for start, _ in rels(result.batch, "PARTICIPATES_IN"))
    assert sum(1 for n in per_site.values() if n >= 2) >= 100
    assert result.batch.nodes["Investigator"]


@shared
def test_demo_files_are_byte_for_byte_copies() -> None:
    for path in iter_files([DEMO_CTGOV_DIR]):
        original = SHARED_CTGOV / path.relative_to(DEMO_CTGOV_DIR)
        assert original.read_bytes() == path.read_bytes(), path


def test_demo_batch_can_be_written(demo_result: LoadResult, tmp_path: Path) -> None:
    store = MemoryStore(tmp_path / "memory")
    store.write(demo_result.batch)  # every relationship endpoint is in the batch; every value is storable
    stats = store.stats()
    assert stats.nodes["Study"] == demo_result.studies
    assert stats.relationships["PARTICIPATES_IN"] == rel_counts(demo_result.batch)["PARTICIPATES_IN"]
    store.close()


def test_duplicate_study_in_two_formats_uses_one_record(demo_result: LoadResult) -> None:
    # NCT00023673 is in the demo as v1 JSON and as XML: one study, from the newer/preferred record
    study = demo_result.batch.nodes["Study"]["NCT00023673"]
    assert study["source_format"] == "v1"
    assert study["phase"] == "PHASE1/PHASE2"


# --------------------------------------------------------------------------------------------
# Determinism
# --------------------------------------------------------------------------------------------


def test_reversed_order_gives_the_same_batch() -> None:
    files = iter_files([DEMO_CTGOV_DIR, VALID, MATCHING])
    forward = read_ctgov(files)
    backward = read_ctgov(list(reversed(files)))
    assert snapshot(forward.batch) == snapshot(backward.batch)


def test_loading_again_with_the_stored_sites_gives_the_same_batch() -> None:
    files = [DEMO_CTGOV_DIR, MATCHING]
    first = read_ctgov(files)
    existing = [{"id": key, **props} for key, props in first.batch.nodes["Site"].items()]
    second = read_ctgov(files, existing_sites=existing)
    assert snapshot(first.batch) == snapshot(second.batch)


@shared
def test_shared_set_reversed_order(shared_result: LoadResult) -> None:
    backward = read_ctgov(list(reversed(iter_files([SHARED_CTGOV]))))
    assert snapshot(backward.batch) == snapshot(shared_result.batch)


def test_later_load_matches_sites_of_an_earlier_one(tmp_path: Path) -> None:
    first = read_ctgov([VALID / "NCT09000001.json"])  # "Massachusetts General Hospital"
    existing = [{"id": key, **props} for key, props in first.batch.nodes["Site"].items()]
    (site_id,) = first.batch.nodes["Site"]
    later = tmp_path / "later.json"
    later.write_text(
        (VALID / "NCT09000001.json")
        .read_text()
        .replace('"Massachusetts General Hospital"', '"Massachusets General Hospital"')
        .replace("NCT09000001", "NCT09000099")
    )
    second = read_ctgov([later], existing_sites=existing)
    assert list(second.batch.nodes["Site"]) == [site_id]
    props = second.batch.nodes["Site"][site_id]
    assert props["name"] == "Massachusetts General Hospital"  # the stored display name is kept
    assert props["aliases"] == ["Massachusets General Hospital", "Massachusetts General Hospital"]


# --------------------------------------------------------------------------------------------
# Facility matching
# --------------------------------------------------------------------------------------------


def test_md_anderson_spellings_merge_and_boston_hospitals_do_not(fixtures_result: LoadResult) -> None:
    sites = fixtures_result.batch.nodes["Site"]
    assert set(sites[MDA]["aliases"]) == {
        "MD Anderson Cancer Center",
        "University of Texas MD Anderson Cancer Center",
        "The University of Texas M.D. Anderson Cancer Center",
        "M D Anderson Cancer Center",
        "MD Anderson Cancer Center-Site Number:8400001",
    }
    boston = sorted(k for k in sites if "-boston-" in k)
    assert boston == [
        "site:beth-israel-deaconess-medical-center-boston-massachusetts-unitedstates",
        "site:boston-childrens-hospital-boston-massachusetts-unitedstates",
        "site:boston-medical-center-boston-massachusetts-unitedstates",
        "site:brigham-and-womens-hospital-boston-massachusetts-unitedstates",
        "site:dana-farber-cancer-institute-boston-massachusetts-unitedstates",
        "site:massachusetts-general-hospital-boston-massachusetts-unitedstates",
    ]
    assert set(sites["site:dana-farber-cancer-institute-boston-massachusetts-unitedstates"]["aliases"]) == {
        "Dana-Farber Cancer Institute",
        "Dana Farber Cancer Institute",
    }


def test_placeholder_sites_are_skipped(fixtures_result: LoadResult) -> None:
    assert not [k for k in fixtures_result.batch.nodes["Site"] if "research-site" in k]


def match(*rows: tuple[str, str, str | None, str]) -> dict[str, str]:
    matcher = SiteMatcher()
    keys = {row[0]: matcher.add(*row) for row in rows}
    ids = matcher.resolve()
    return {name: ids[key] for name, key in keys.items() if key is not None}


def test_matcher_rules() -> None:
    ids = match(
        ("Massachusetts General Hospital", "Boston", "Massachusetts", "United States"),
        ("Massachusets General Hospital", "Boston", "Massachusetts", "United States"),
        ("Brigham and Women's Hospital", "Boston", "Massachusetts", "United States"),
        ("Brigham & Womens Hospital", "Boston", "MA", "USA"),  # other state spelling: another block in the US
        ("Seoul National University Hospital", "Seoul", None, "Korea, Republic of"),
        ("Seoul National University Bundang Hospital", "Seoul", None, "South Korea"),
        ("Severance Hospital, Yonsei University Health System", "Seoul", None, "South Korea"),
        ("Yonsei University Health System, Severance Hospital", "Seoul", None, "South Korea"),
        ("Kaiser Permanente Sacramento", "Sacramento", "California", "United States"),
        ("Kaiser Permanente South Sacramento", "Sacramento", "California", "United States"),
        ("Hôpital Saint-Louis", "Paris", None, "France"),
        ("Hopital St. Louis", "Paris", None, "France"),
        ("Mayo Clinic", "Rochester", "Minnesota", "United States"),
        ("Mayo Clinic", "Rochester", "New York", "United States"),
    )
    assert ids["Massachusetts General Hospital"] == ids["Massachusets General Hospital"]
    assert ids["Massachusetts General Hospital"] != ids["Brigham and Women's Hospital"]
    assert ids["Seoul National University Hospital"] != ids["Seoul National University Bundang Hospital"]
    assert (
        ids["Severance Hospital, Yonsei University Health System"] == ids["Yonsei University Health System, Severance Hospital"]
    )
    assert ids["Kaiser Permanente Sacramento"] != ids["Kaiser Permanente South Sacramento"]  # a branch
    assert ids["Hôpital Saint-Louis"] == ids["Hopital St. Louis"] == "site:hopital-saint-louis-paris-france"


def test_matcher_same_name_in_two_states() -> None:
    matcher = SiteMatcher()
    mn = matcher.add("Mayo Clinic", "Rochester", "Minnesota", "United States")
    ny = matcher.add("Mayo Clinic", "Rochester", "New York", "United States")
    ids = matcher.resolve()
    assert mn is not None and ny is not None
    assert ids[mn] == "site:mayo-clinic-rochester-minnesota-unitedstates"
    assert ids[mn] != ids[ny]


def test_ambiguous_containment_is_left_alone() -> None:
    ids = match(
        ("Mayo Clinic", "Phoenix", "Arizona", "United States"),
        ("Mayo Clinic Hospital", "Phoenix", "Arizona", "United States"),
        ("Mayo Clinic Cancer Center", "Phoenix", "Arizona", "United States"),
    )
    assert len(set(ids.values())) == 3  # "Mayo Clinic" could be either: not guessed


def test_branch_named_by_a_place_is_another_site() -> None:
    ids = match(
        ("MD Anderson", "Houston", "Texas", "United States"),
        ("MD Anderson Cancer Center", "Houston", "Texas", "United States"),
        ("MD Anderson Regional Care Center-Katy", "Houston", "Texas", "United States"),
    )
    assert ids["MD Anderson"] == ids["MD Anderson Cancer Center"] != ids["MD Anderson Regional Care Center-Katy"]


def test_university_does_not_absorb_its_hospital() -> None:
    ids = match(
        ("Shinshu University", "Matsumoto", None, "Japan"),
        ("Shinshu University Hospital", "Matsumoto", None, "Japan"),
        ("Seoul St. Mary's Hospital", "Seoul", None, "South Korea"),
        ("The Catholic University of Korea, Seoul St. Mary's Hospital", "Seoul", None, "South Korea"),
    )
    assert ids["Shinshu University"] != ids["Shinshu University Hospital"]
    assert ids["Seoul St. Mary's Hospital"] == ids["The Catholic University of Korea, Seoul St. Mary's Hospital"]


def test_normalize_facility() -> None:
    assert normalize_facility("The University of Texas M.D. Anderson Cancer Center /ID# 270059") == (
        "university of texas md anderson cancer center"
    )
    assert normalize_facility("~MD Anderson Cancer Center-Site Number:8400002") == "md anderson cancer center"
    assert normalize_facility("St. Jude Children's Research Hospital") == "saint jude childrens research hospital"
    assert normalize_facility("Hospital Universitari Vall d'Hebron") == "hospital universitari vall d hebron"
    assert normalize_facility("Acme Oncology & Hematology, Inc.") == "acme oncology and hematology"
    assert normalize_facility("1011 Charité Berlin") == "charite berlin"
    assert display_facility("~MD Anderson Cancer Center-Site Number:8400002") == "MD Anderson Cancer Center"
    assert display_facility("Dana Farber Cancer Institute ( Site 1105)") == "Dana Farber Cancer Institute"


# --------------------------------------------------------------------------------------------
# People
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "display", "degrees"),
    [
        ("Jane Q. Doe, MD, PhD", "Jane Q. Doe", ("MD", "PhD")),
        ("DOE, JANE Q., M.D., Ph.D.", "Jane Q. Doe", ("MD", "PhD")),
        ("Arbelaez, Ana Maria", "Ana Maria Arbelaez", ()),
        ("Dr. Anant Gokarn, Gokarn", "Anant Gokarn", ()),
        ("Prof. Dr. Christina Peters, MD/PhD", "Christina Peters", ("MD", "PhD")),
        ("Daniel Martin, MB ChB", "Daniel Martin", ("MBChB",)),
        ("Gary Rodin, MD FRCPC", "Gary Rodin", ("MD", "FRCPC")),
        ("Shaheen Lakhan, MDPhD, FAAN", "Shaheen Lakhan", ("MD", "PhD", "FAAN")),
        ("Margitta Worm, Prof.Dr.med.", "Margitta Worm", ()),
        ("Philippe MERLE, Pr", "Philippe Merle", ()),
        ("John Smith MD", "John Smith", ("MD",)),
        ("Daiyuan Ma, M.D", "Daiyuan Ma", ("MD",)),
        ("Vasileios (Vasily) J. Assikis", "Vasileios J. Assikis", ()),
        ("N. Franklin Adkinson, Jr., MD", "N. Franklin Adkinson Jr.", ("MD",)),
    ],
)
def test_person_names(raw: str, display: str, degrees: tuple[str, ...]) -> None:
    person = parse_person(raw)
    assert person is not None
    assert (person.display, person.degrees) == (display, degrees)


def test_person_keys_ignore_case_dots_and_degrees() -> None:
    keys = {
        p.key for raw in ("Peter J. Schmidt, M.D.", "PETER J SCHMIDT", "Peter J Schmidt, MD, PhD") if (p := parse_person(raw))
    }
    assert keys == {"inv:peter-j-schmidt"}


@pytest.mark.parametrize(
    "raw",
    [
        "Medical Director",
        "Clinical Trials",
        "Study Director",
        "GSK Clinical Trials",
        "Novartis Pharmaceuticals",
        "Pfizer CT.gov Call Center",
        "Call 1-877-CTLILLY (1-877-285-4559) or 1-317-615-4559 Mon - Fri 9 AM - 5 PM Eastern time",
        "ABBVIE INC.",
        "Sponsor Chugai Pharmaceutical Co.Ltd",
        "Campion, Breanna <breannacampion@polk-county.net> Campion",
        "MD",
        "Principal Investigator",
        "Chief Medical Officer",
        "Clinical Transparency (dept. 2834)",
        "UCB Cares",
    ],
)
def test_boilerplate_officials_are_not_people(raw: str) -> None:
    assert parse_person(raw) is None


def test_names_containing_the_sponsor_are_not_people() -> None:
    assert parse_person("Bristol-Myers Squibb", org_names=["Bristol-Myers Squibb"]) is None
    assert parse_person("Acme Biologics Responsible", org_names=["Acme Biologics"]) is None
    assert parse_person("Ana Maria Arbelaez", org_names=["Arbelaez, Ana Maria"]) is not None  # an individual sponsor


def test_investigators_in_the_graph(fixtures_result: LoadResult) -> None:
    batch = fixtures_result.batch
    people = batch.nodes["Investigator"]
    assert people["inv:jane-q-doe"] == {"name": "Jane Q. Doe", "degrees": ["MD", "PhD"], "affiliations": []}
    assert people["inv:john-smith"]["degrees"] == ["MBBS", "FRCP"]
    assert not [k for k in people if "pfizer" in k or "clinical" in k or "call" in k]
    on = {(k.start, k.end, props["site_id"]): props["role"] for k, props in batch.rels.items() if k.type == "INVESTIGATOR_ON"}
    assert on[("inv:jane-q-doe", "NCT09100001", MDA)] == "PRINCIPAL_INVESTIGATOR"
    assert on[("inv:john-smith", "NCT09100001", MDA)] == "SUB_INVESTIGATOR"
    assert on[("inv:jeffrey-bradley", "NCT09000006", "")] == "STUDY_CHAIR"
    works = set(rels(batch, "WORKS_AT"))
    assert ("inv:jane-q-doe", MDA) in works
    # an overall official whose affiliation is one of the study's sites also works there
    assert ("inv:jeffrey-bradley", "site:mobile-infirmary-medical-center-mobile-alabama-unitedstates") in works
    # plain contacts are not investigators
    assert not [k for k in people if "desk" in k]


# --------------------------------------------------------------------------------------------
# Normalised study fields
# --------------------------------------------------------------------------------------------


def test_study_props_of_each_format(fixtures_result: LoadResult) -> None:
    studies = fixtures_result.batch.nodes["Study"]
    assert studies["NCT09000001"] == {
        "title": "A valid single study",
        "official_title": "A valid single study (official)",
        "phase": "PHASE1/PHASE2",
        "overall_status": "RECRUITING",
        "study_type": "INTERVENTIONAL",
        "start_date": "2021-03",
        "completion_date": "2025-12-31",
        "enrollment": 40,
        "source_format": "v2",
    }
    assert studies["NCT09000006"]["overall_status"] == "ACTIVE_NOT_RECRUITING"
    assert studies["NCT09000006"]["start_date"] == "2001-07"
    assert studies["NCT09000006"]["enrollment"] == 63
    assert studies["NCT09000007"]["phase"] == "PHASE2/PHASE3"
    assert studies["NCT09000007"]["overall_status"] == "UNKNOWN"
    assert studies["NCT09000007"]["start_date"] == "2015-05-08"
    assert "NCT09000005" in studies  # from an API page {"studies": [...]}
    site = fixtures_result.batch.nodes["Site"]["site:massachusetts-general-hospital-boston-massachusetts-unitedstates"]
    assert (site["lat"], site["lon"], site["state"], site["country"]) == (42.36, -71.06, "Massachusetts", "United States")
    assert rels(fixtures_result.batch, "PARTICIPATES_IN")[
        ("site:massachusetts-general-hospital-boston-massachusetts-unitedstates", "NCT09000001")
    ] == {"status": "RECRUITING"}


def test_sponsors_and_conditions(fixtures_result: LoadResult) -> None:
    batch = fixtures_result.batch
    assert batch.nodes["Sponsor"]["sponsor:national-cancer-institute-nci"] == {
        "name": "National Cancer Institute (NCI)",
        "agency_class": "NIH",
    }
    sponsored = rels(batch, "SPONSORED_BY")
    assert sponsored[("NCT09000001", "sponsor:example-oncology-group")] == {"role": "lead"}
    assert sponsored[("NCT09000001", "sponsor:national-cancer-institute-nci")] == {"role": "collaborator"}
    assert batch.nodes["Condition"]["condition:lung-cancer"] == {"name": "Lung Cancer"}
    assert ("NCT09000006", "condition:lung-cancer") in rels(batch, "STUDIES")
    assert sponsor_id("Novo Nordisk A/S") == "sponsor:novo-nordisk"
    assert sponsor_id("Eli Lilly and Company") == "sponsor:eli-lilly"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["PHASE1", "PHASE2"], "PHASE1/PHASE2"),
        (["Phase 1/Phase 2"], "PHASE1/PHASE2"),
        (["N/A"], "NA"),
        (["NA"], "NA"),
        (["Not Applicable"], "NA"),
        (["Early Phase 1"], "EARLY_PHASE1"),
        (["EARLY_PHASE1"], "EARLY_PHASE1"),
        ([], None),
        ([None], None),
    ],
)
def test_phases(values: list[str], expected: str | None) -> None:
    assert norm_phase(values) == expected


def test_statuses_and_dates() -> None:
    assert norm_status("Active, not recruiting") == "ACTIVE_NOT_RECRUITING"
    assert norm_status("Unknown status") == "UNKNOWN"
    assert norm_status("ENROLLING_BY_INVITATION") == "ENROLLING_BY_INVITATION"
    assert parse_date("November 27, 2017") == "2017-11-27"
    assert parse_date("July 2001") == "2001-07"
    assert parse_date("2006-11") == "2006-11"
    assert parse_date("2006-13") is None
    assert parse_date("sometime") is None


# --------------------------------------------------------------------------------------------
# Problems
# --------------------------------------------------------------------------------------------


def test_broken_files_are_reported_and_valid_records_kept(fixtures_result: LoadResult) -> None:
    result = fixtures_result
    by_name = {
        name: problems_for(result, name)
        for name in (
            "truncated.json",
            "latin1.json",
            "no_nct_id.json",
            "bad_nct_id.xml",
            "malformed.xml",
            "not_a_zip.zip",
            "truncated.zip",
            "one_bad_member.zip",
            "empty.json",
            "unknown.json",
            "entities.xml",
            "bad_date.json",
        )
    }
    assert all(len(found) == 1 for found in by_name.values()), by_name

    (truncated,) = by_name["truncated.json"]
    assert truncated.message.startswith("malformed JSON") and truncated.line == 23
    (latin1,) = by_name["latin1.json"]
    assert "not UTF-8" in latin1.message and latin1.line is not None and latin1.line > 1
    (no_id,) = by_name["no_nct_id.json"]
    assert no_id.field == "[1].protocolSection.identificationModule.nctId" and no_id.line is not None
    (bad_id,) = by_name["bad_nct_id.xml"]
    assert bad_id.field == "id_info/nct_id" and "NCT123" in bad_id.message
    (malformed,) = by_name["malformed.xml"]
    assert malformed.message.startswith("malformed XML") and malformed.line == 4
    assert "not a valid zip" in by_name["not_a_zip.zip"][0].message
    assert "not a valid zip" in by_name["truncated.zip"][0].message
    (member,) = by_name["one_bad_member.zip"]
    assert member.source.endswith("one_bad_member.zip!studies/broken.json") and member.line == 2
    assert by_name["empty.json"][0].message == "empty file"
    assert by_name["unknown.json"][0].message.startswith("unknown format")
    assert "entities" in by_name["entities.xml"][0].message
    assert by_name["bad_date.json"][0].field == "protocolSection.statusModule.startDateStruct.date"

    studies = result.batch.nodes["Study"]
    assert {"NCT09000013", "NCT09000020", "NCT09000022", "NCT09000001"} <= set(studies)  # neighbours of bad records
    assert not {"NCT09000010", "NCT09000011", "NCT09000012", "NCT09000014", "NCT09000015", "NCT09000021"} & set(studies)
    assert result.skipped == 3  # the records without/with a bad NCT id and with a bad date
    assert result.files == len(iter_files([DATA])) - 1 + 3  # one_bad_member.zip counts as its 3 study members


def test_bad_record_leaves_nothing_in_the_batch(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text((VALID / "NCT09000001.json").read_text().replace('"count": 40', '"count": "forty"'))
    result = read_ctgov([bad])
    assert result.batch.node_count() == 0 and result.batch.rel_count() == 0
    assert [p.field for p in result.problems] == ["protocolSection.designModule.enrollmentInfo.count"]


def test_problems_are_capped(tmp_path: Path) -> None:
    for i in range(205):
        (tmp_path / f"empty{i:03d}.json").write_text("")
    result = read_ctgov([tmp_path])
    assert len(result.problems) == 201
    assert result.problems[-1].message == "... and 5 more problem(s)"


def test_missing_path_is_a_problem(tmp_path: Path) -> None:
    result = read_ctgov([tmp_path / "nope.json"])
    assert [p.message for p in result.problems] == ["file not found"]
    assert result.files == 0


def test_content_decides_the_format(tmp_path: Path) -> None:
    shutil.copy(VALID / "NCT09000007.xml", tmp_path / "study.json")  # XML with a .json name
    shutil.copy(BROKEN / "one_bad_member.zip", tmp_path / "archive.data")
    result = read_ctgov([tmp_path / "study.json", tmp_path / "archive.data"])
    assert {"NCT09000007", "NCT09000020", "NCT09000022"} == set(result.batch.nodes["Study"])


# --------------------------------------------------------------------------------------------
# Files and progress
# --------------------------------------------------------------------------------------------


def test_iter_files(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / ".hidden").mkdir()
    for name in ("b/z.json", "a.XML", "c.zip", "notes.md", ".hidden/x.json", "b/.x.json"):
        (tmp_path / name).write_text("")
    assert [p.relative_to(tmp_path).as_posix() for p in iter_files([tmp_path])] == ["a.XML", "b/z.json", "c.zip"]
    assert iter_files([tmp_path / "notes.md", tmp_path / "notes.md"]) == [tmp_path / "notes.md"]


def test_progress_is_called_once_per_file() -> None:
    calls: list[int] = []
    read_ctgov([DATA], progress=calls.append)
    assert calls == [1] * len(iter_files([DATA]))
