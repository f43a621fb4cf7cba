"""The shipped ontology, validation of the broken corpus, diff, label tagging and the CLI (no store needed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sitegraph.cli.ontology_cmd import app
from sitegraph.errors import InvalidInputError
from sitegraph.ontology import (
    BARRIER,
    LabelIndex,
    Ontology,
    diff,
    load_ontology,
    packaged_dir,
    validate,
    validate_ontology,
)
from tests.conftest import IN_CI

BROKEN = Path(__file__).parent / "data" / "ontology_broken"
runner = CliRunner()

# Words each broken variant's message must contain, besides the check's code.
DEFECT_WORDS = {
    "syntax": "syntax error",
    "broader-cycle": "cycle",
    "undefined-reference--link-to-undefined-tactic": "not defined",
    "missing-label": "no skos:prefLabel",
    "duplicate-label": "already the prefLabel",
    "tactic-mitigates-nothing": "mitigates no barrier",
    "barrier-without-category": "no category",
    "deprecated-in-use": "deprecated",
    "shacl--evidence-level-outside-list": "sg:evidenceLevel must be one of",
    "shacl--severity-above-one": "sg:severityWeight",
    "shacl--predicate-not-allowed": "rdfs:comment",
    "shacl--published-evidence-without-effect": "published trial evidence",
    "invalid-reference--link-to-category": "not a barrier",
    "duplicate-link": "same tactic and barrier",
    "unknown-subject": "sg:Barier",
}


@pytest.fixture(scope="module")
def onto() -> Ontology:
    return load_ontology()


def test_shipped_ontology_is_valid_and_big_enough(onto: Ontology) -> None:
    report = validate_ontology(onto)
    assert report.ok, report.render()
    counts = onto.counts()
    assert counts["categories"] >= 8
    assert counts["barriers"] >= 40
    assert counts["tactics"] >= 40
    assert counts["links"] >= 40
    assert counts["barrier_alt_labels"] >= 200
    assert not report.warnings, report.render()


def test_every_barrier_is_under_a_category_and_every_tactic_is_described(onto: Ontology) -> None:
    for b in onto.barriers.values():
        assert b.category in onto.categories, b.iri
        assert b.definition and b.label and b.alt_labels and b.severity is not None and 0 <= b.severity <= 1
    for t in onto.tactics.values():
        assert t.definition and t.role in onto.roles and t.channel in onto.channels and t.effort in onto.efforts, t.iri
        assert onto.links_for_tactic(t.iri), t.iri
        assert any(r.startswith("ERIC strategy:") for r in t.relations), t.iri


def test_links_carry_evidence_and_published_effects(onto: Ontology) -> None:
    levels = {lk.evidence_level for lk in onto.links.values()}
    assert levels <= {"published-trial-evidence", "expert-consensus", "observed-in-our-data"}
    published = [lk for lk in onto.links.values() if lk.evidence_level == "published-trial-evidence"]
    assert len(published) >= 5
    assert all(lk.effect and lk.certainty and lk.source and lk.citation for lk in published)
    assert all(lk.source and lk.citation for lk in onto.links.values())
    effects = " ".join(lk.effect or "" for lk in published)
    assert "RR 1.25" in effects and "+6 percentage points" in effects and "+9 percentage points" in effects


def test_mission_frictions_and_role_alignment(onto: Ontology) -> None:
    for bid in (
        "repeated-feasibility-questionnaires",
        "repeated-contract-revisions",
        "stalled-ethics-approval",
        "screen-failures-on-eligibility-criteria",
        "data-query-backlog",
        "confusing-case-report-forms",
        "system-access-not-granted",
        "training-gaps",
        "slow-patient-recruitment",
    ):
        assert str(BARRIER) + bid in onto.barriers, bid
    assert "http://purl.obolibrary.org/obo/NCIT_C19924" in onto.roles["principal-investigator"].exact_match
    assert "http://purl.obolibrary.org/obo/NCIT_C54622" in onto.roles["subinvestigator"].exact_match
    assert stalled_iri(onto) == str(BARRIER) + "stalled-ethics-approval"


def stalled_iri(onto: Ontology) -> str:
    concept = onto.concept("stalled-ethics-approval")
    assert concept is not None
    return concept.iri


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("IRB still hasn't approved the amendment", "stalled-ethics-approval"),
        ("Contract redlines again from legal", "repeated-contract-revisions"),
        ("Coordinator says: too many logins!", "too-many-systems"),
        ("patients keep failing screening on labs", "screen-failures-on-eligibility-criteria"),
        ("Ugh, another feasibility questionnaire this week", "repeated-feasibility-questionnaires"),
        ("they are struggling with the query backlog", "data-query-backlog"),
    ],
)
def test_alt_labels_tag_free_text(onto: Ontology, text: str, expected: str) -> None:
    ids = [m.id for m in LabelIndex.from_ontology(onto).match(text)]
    assert expected in ids


def test_links_for_barrier_inherit_through_broader(onto: Ontology) -> None:
    screen = str(BARRIER) + "screen-failures-on-eligibility-criteria"
    links = onto.links_for_barrier(screen)
    distances = {d for _lk, d in links}
    assert 0 in distances and 1 in distances  # own tactics and those for slow recruitment
    assert all(lk.barrier in (screen, str(BARRIER) + "slow-patient-recruitment") for lk, _d in links)


@pytest.mark.parametrize("path", sorted(p for p in BROKEN.glob("*.ttl") if p.name != "valid-base.ttl"), ids=lambda p: p.stem)
def test_broken_variant_fails_naming_its_defect(path: Path) -> None:
    report = validate(path)
    check = path.stem.split("--", 1)[0]
    assert not report.ok
    assert report.checks_failed() == {check}, report.render()
    text = report.render()
    assert f"[{check}]" in text and DEFECT_WORDS[path.stem] in text, text
    assert all(p.file or p.iri for p in report.errors)


def test_valid_base_of_the_corpus_is_valid() -> None:
    report = validate(BROKEN / "valid-base.ttl")
    assert report.ok, report.render()


def test_syntax_error_names_file_and_line() -> None:
    [problem] = validate(BROKEN / "syntax.ttl").errors
    assert problem.file and problem.file.endswith("syntax.ttl")
    assert problem.line == 30


def test_missing_path_and_empty_folder_are_reported(tmp_path: Path) -> None:
    assert validate(tmp_path / "nope").checks_failed() == {"no-files"}
    assert validate(tmp_path).checks_failed() == {"no-files"}
    with pytest.raises(InvalidInputError):
        load_ontology(BROKEN / "syntax.ttl")


def test_edited_copy_of_the_packaged_folder(tmp_path: Path) -> None:
    folder = tmp_path / "onto"
    shutil.copytree(packaged_dir(), folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    barriers = folder / "barriers.ttl"
    barriers.write_text(
        barriers.read_text() + "\nsgb:stalled-ethics-approval skos:broader sgb:multiple-ethics-reviews .\n"
        "sgb:multiple-ethics-reviews skos:broader sgb:stalled-ethics-approval .\n"
    )
    report = validate(folder)
    assert report.checks_failed() == {"broader-cycle"}
    result = runner.invoke(app, ["validate", str(folder)])
    assert result.exit_code == 1
    assert "broader-cycle" in result.output


def test_cli_validate_exit_codes() -> None:
    ok = runner.invoke(app, ["validate"])
    assert ok.exit_code == 0, ok.output
    assert "valid:" in ok.output and "barriers" in ok.output
    bad = runner.invoke(app, ["validate", str(BROKEN / "undefined-reference--link-to-undefined-tactic.ttl")])
    assert bad.exit_code == 1
    assert "undefined-reference" in bad.output and "no-such-tactic" in bad.output


def test_diff_reports_added_removed_and_changed(tmp_path: Path) -> None:
    old = BROKEN / "valid-base.ttl"
    new = tmp_path / "new.ttl"
    text = old.read_text().replace('"Budget negotiation stalled"@en', '"Budget talks stalled"@en')
    text = text.replace("sg:severityWeight 0.6 .", "sg:severityWeight 0.7 .", 1)
    new.write_text(text)
    result = diff(old, new)
    assert not result.empty
    [changed_budget] = [c for c in result.changed if c.iri.endswith("budget-negotiation-stalled")]
    assert any(f.field == "label" and f.new == "Budget talks stalled" for f in changed_budget.changes)
    rendered = result.render()
    assert "prefLabel" in rendered and "Budget talks stalled" in rendered and "severity weight" in rendered
    assert diff(old, old).empty


@pytest.mark.skipif(shutil.which("git") is None and not IN_CI, reason="git not installed")
def test_diff_against_a_git_revision(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "onto").mkdir(parents=True)
    base = (BROKEN / "valid-base.ttl").read_text()
    (repo / "onto" / "content.ttl").write_text(base)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "add", "."], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "base"], cwd=repo, check=True)
    link = "sgm:master-agreement--repeated-contract-revisions"
    removed = base.replace(f"{link} a", f"{link}-x a")
    (repo / "onto" / "content.ttl").write_text(removed)
    from sitegraph.ontology.files import git_sources
    from sitegraph.ontology.loader import load_sources

    old = load_sources(git_sources("HEAD", "onto", repo=repo))
    result = diff(old, repo / "onto")
    assert [lk.id for lk in result.links_added] == ["master-agreement--repeated-contract-revisions-x"]
    assert [lk.id for lk in result.links_removed] == ["master-agreement--repeated-contract-revisions"]
    cli = runner.invoke(app, ["diff", str(BROKEN / "valid-base.ttl"), str(repo / "onto")])
    assert cli.exit_code == 0 and "link" in cli.output


def test_cli_stats_and_tag() -> None:
    stats = runner.invoke(app, ["stats"])
    assert stats.exit_code == 0 and "tactics:" in stats.output
    tag = runner.invoke(app, ["tag", "IRB still hasn't approved"])
    assert tag.exit_code == 0 and "stalled-ethics-approval" in tag.output
