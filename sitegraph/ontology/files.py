"""Where ontology files come from: the packaged ones, a folder or file, or a git revision.

A *source* is the text of one Turtle file with the name problems are reported under. Folders are
read non-recursively (``*.ttl``). ``core.ttl`` (classes, properties, controlled lists) and
``shapes.ttl`` (SHACL) are the *vocabulary*: when a folder or file given by the user does not bring
its own, the packaged ones are added, so a curator can validate a single edited file.
"""

from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from sitegraph.errors import InvalidInputError, Problem, UsageError

log = logging.getLogger(__name__)

PACKAGE = "sitegraph.ontology"
VOCABULARY_FILES = ("core.ttl", "shapes.ttl")
SUFFIX = ".ttl"


@dataclass(frozen=True)
class Source:
    """The text of one Turtle file and the name to report it under."""

    name: str
    text: str
    vocabulary: bool = False

    @property
    def basename(self) -> str:
        return self.name.replace("\\", "/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]


def packaged_sources(*, only: tuple[str, ...] | None = None) -> list[Source]:
    """The Turtle files shipped in the package (all of them, or those named in ``only``)."""
    root = resources.files(PACKAGE)
    out: list[Source] = []
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(SUFFIX) or (only is not None and entry.name not in only):
            continue
        out.append(Source(str(entry), entry.read_text(encoding="utf-8"), entry.name in VOCABULARY_FILES))
    return out


def packaged_dir() -> Path:
    """The folder of the packaged Turtle files (they are plain files in an installed package)."""
    return Path(str(resources.files(PACKAGE)))


def _with_vocabulary(sources: list[Source]) -> list[Source]:
    present = {s.basename for s in sources}
    missing = tuple(name for name in VOCABULARY_FILES if name not in present)
    return (packaged_sources(only=missing) if missing else []) + sources


def path_sources(path: Path) -> list[Source]:
    """The Turtle files of a folder or one file, plus the packaged vocabulary files it lacks."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix == SUFFIX)
        if not files:
            raise InvalidInputError([Problem(str(path), f"no Turtle (*{SUFFIX}) files in this folder")], "no ontology files")
    elif path.is_file():
        files = [path]
    else:
        raise InvalidInputError([Problem(str(path), "no such file or folder")], "no ontology files")
    out: list[Source] = []
    for f in files:
        try:
            text = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise InvalidInputError([Problem(str(f), f"cannot read the file: {e}")], "unreadable ontology file") from e
        out.append(Source(str(f), text, f.name in VOCABULARY_FILES))
    return _with_vocabulary(out)


def _git(args: list[str], cwd: Path) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise UsageError(f"cannot run git: {e}") from e
    if done.returncode != 0:
        raise UsageError(f"git {' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def git_sources(revision: str, subpath: str | None = None, *, repo: Path | None = None) -> list[Source]:
    """The Turtle files of a folder at a git revision (``git show REV:path``).

    ``subpath`` is the folder (or one file) relative to the repository root; by default the
    packaged ontology folder. ``repo`` is any folder inside the repository (default: the one holding
    the package).
    """
    start = Path(repo) if repo is not None else packaged_dir()
    top = Path(_git(["rev-parse", "--show-toplevel"], start).strip())
    if subpath is None:
        try:
            subpath = packaged_dir().resolve().relative_to(top.resolve()).as_posix()
        except ValueError as e:
            raise UsageError(f"the packaged ontology ({packaged_dir()}) is not inside the git repository {top}") from e
    subpath = subpath.strip("/") or "."
    if subpath.endswith(SUFFIX):
        paths = [subpath]
    else:
        listing = _git(["ls-tree", "--name-only", f"{revision}:{subpath}" if subpath != "." else f"{revision}:"], top)
        names = sorted(n for n in listing.splitlines() if n.endswith(SUFFIX))
        paths = [f"{subpath}/{n}" if subpath != "." else n for n in names]
    if not paths:
        raise InvalidInputError([Problem(f"{revision}:{subpath}", "no Turtle files at this revision")], "no ontology files")
    out = [
        Source(f"{revision}:{p}", _git(["show", f"{revision}:{p}"], top), p.rsplit("/", 1)[-1] in VOCABULARY_FILES) for p in paths
    ]
    log.debug("read %d file(s) from git revision %s", len(out), revision)
    return _with_vocabulary(out)


def resolve_sources(spec: str | Path | None, *, repo: Path | None = None) -> list[Source]:
    """Sources for a command-line argument: None = the packaged files; an existing path; else a git revision.

    A revision may name a folder or file: ``HEAD~1`` (the packaged folder) or ``HEAD~1:path/in/repo``.
    """
    if spec is None:
        return packaged_sources()
    if isinstance(spec, Path) or Path(spec).exists():
        return path_sources(Path(spec))
    text = str(spec)
    if ":" not in text and (text.endswith(SUFFIX) or "/" in text or "\\" in text):
        return path_sources(Path(text))  # looks like a path that does not exist: say so, not a git error
    if ":" in text:
        revision, sub = text.split(":", 1)
        return git_sources(revision, sub or None, repo=repo)
    return git_sources(text, repo=repo)
