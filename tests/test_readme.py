"""The README's examples run: every `$ sitegraph ...` line in a block marked `readme-example`."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sitegraph.cli import app
from sitegraph.settings import get_settings

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def readme_commands() -> list[list[str]]:
    text = README.read_text()
    commands: list[list[str]] = []
    for block in re.findall(r"<!-- readme-example[^>]*-->\s*```console\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            if line.startswith("$ sitegraph "):
                cmd = line[2:].split("#", 1)[0]
                commands.append(shlex.split(cmd)[1:])
    return commands


def test_readme_has_examples() -> None:
    cmds = readme_commands()
    assert len(cmds) >= 4
    assert ["demo"] in cmds


def test_readme_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("SITEGRAPH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SITEGRAPH_STORE", "memory")
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        for args in readme_commands():
            result = runner.invoke(app, args)
            assert result.exit_code == 0, f"sitegraph {' '.join(args)} failed:\n{result.output}"
    finally:
        get_settings.cache_clear()
