"""The examples in docs/ontology.md run: its Turtle snippets validate and its Python block works."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from typer.testing import CliRunner

from sitegraph.cli.ontology_cmd import app
from sitegraph.ontology import packaged_dir, validate

DOC = Path(__file__).resolve().parents[1] / "docs" / "ontology.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(), flags=re.S)


def test_turtle_examples_validate(tmp_path: Path) -> None:
    folder = tmp_path / "onto"
    shutil.copytree(packaged_dir(), folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    barrier, tactic, link = _blocks("turtle")[:3]
    for name, snippet in (("barriers.ttl", barrier), ("tactics.ttl", tactic), ("mitigations.ttl", link)):
        target = folder / name
        target.write_text(target.read_text() + "\n" + snippet)
    report = validate(folder)
    assert report.ok, report.render()
    result = CliRunner().invoke(app, ["tag", "Coordinator says the freezer is full again", "--path", str(folder)])
    assert "site-cannot-store-frozen-samples" in result.output


def test_python_example_runs(capsys: object) -> None:
    [code] = _blocks("python")
    exec(compile(code, str(DOC), "exec"), {})
