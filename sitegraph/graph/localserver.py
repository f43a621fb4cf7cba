"""Run a real Neo4j Community server locally, assembled from Maven Central (no Docker).

The server jars (``org.neo4j:neo4j`` plus ``org.neo4j.client:neo4j-browser`` for
Neo4j Browser at ``/browser/``) are copied by Maven, driven by the packaged
``neo4j_dist/pom.xml``, into a shared cache directory.  The server is then
launched directly as ``org.neo4j.server.CommunityEntryPoint`` with ``java``,
the way the ``neo4j console`` script does it, with a ``neo4j.conf`` written by
this module.  Authentication always stays on: a generated password for the
``neo4j`` user is stored in ``<home>/password`` (mode 0600) and installed
before the first start with Neo4j's own ``neo4j-admin dbms
set-initial-password`` command (``org.neo4j.cli.AdminTool`` from the same
classpath).

Typical use::

    server = LocalNeo4j(Path("~/.sitegraph/neo4j").expanduser())
    server.start()
    print(server.uri, server.user, server.password)
    server.stop()
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import neo4j

__all__ = [
    "BROWSER_VERSION",
    "DEFAULT_USER",
    "JVM_FLAGS",
    "MIN_JAVA_VERSION",
    "NEO4J_VERSION",
    "ClassArchive",
    "LocalNeo4j",
    "LocalServerError",
    "ServerStatus",
    "classpath",
    "default_lib_dir",
    "find_java",
    "find_mvn",
    "free_port",
    "java_major_version",
    "temporary_instance",
]

logger = logging.getLogger(__name__)

#: Neo4j Community version assembled from Maven Central (5.26 LTS, runs on Java 17 and 21).
NEO4J_VERSION = "5.26.30"
#: Newest ``org.neo4j.client:neo4j-browser`` published on Maven Central.
BROWSER_VERSION = "5.24.0"
DEFAULT_USER = "neo4j"
MIN_JAVA_VERSION = 17
#: Newest Java that Neo4j 5.26 supports; newer ones are tried with a warning.
MAX_TESTED_JAVA_VERSION = 21

ENTRY_POINT = "org.neo4j.server.CommunityEntryPoint"
ADMIN_TOOL = "org.neo4j.cli.AdminTool"

#: JVM flags of the 5.26 distribution's ``server.jvm.additional`` defaults, minus
#: ``-XX:+AlwaysPreTouch`` (it would make the whole heap resident at once) and the
#: flight-recorder/diagnostic ones.  Heap flags (-Xms/-Xmx) are added per instance,
#: because the server itself does not apply ``server.memory.heap.*``; the launcher
#: script normally turns those into -Xms/-Xmx.
JVM_FLAGS: tuple[str, ...] = (
    "-XX:+UseG1GC",
    "-XX:-OmitStackTraceInFastThrow",
    "-XX:+UnlockExperimentalVMOptions",
    "-XX:+TrustFinalNonStaticFields",
    "-XX:+DisableExplicitGC",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djdk.nio.maxCachedBufferSize=1024",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Djdk.tls.ephemeralDHKeySize=2048",
    "-Djdk.tls.rejectClientInitiatedRenegotiation=true",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
    "--enable-native-access=ALL-UNNAMED",
    "-Dlog4j2.disable.jmx=true",
    "-Dlog4j.layout.jsonTemplate.maxStringLength=32768",
    "-Dfile.encoding=UTF-8",
)

#: Small, short-lived JVM for the admin tool (set-initial-password takes ~1 s).
_ADMIN_JVM_FLAGS: tuple[str, ...] = (
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Xmx256m",
    "-Dfile.encoding=UTF-8",
)

#: Neo4j waits 5 s + 5 s for Bolt connections/event loops on shutdown; the stores are
#: already checkpointed and closed by then, so a local instance can skip that wait
#: (stop takes ~2 s instead of ~12 s).  Override through ``extra_config``.
_FAST_SHUTDOWN_CONFIG: dict[str, str] = {
    "internal.dbms.bolt.netty_server_shutdown_quiet_period": "0",
    "internal.server.bolt.connection_shutdown_wait_time": "0s",
}

_MARKER_NAME = ".sitegraph-complete"
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_PID_FILE_NAME = "sitegraph-neo4j.pid"
_CONSOLE_TAIL_LINES = 60
_JAVA_INSTALL_HINT = "install a Java 17 (or 21) runtime, e.g. `apt-get install openjdk-17-jre-headless`, or set JAVA_HOME to one"
_MVN_INSTALL_HINT = "install Apache Maven, e.g. `apt-get install maven`"


class LocalServerError(Exception):
    """The local Neo4j server could not be installed, started or stopped."""


@dataclass(frozen=True)
class ServerStatus:
    """Snapshot of a local instance, as reported by :meth:`LocalNeo4j.status`."""

    running: bool
    pid: int | None
    bolt_uri: str
    browser_url: str
    user: str
    password_file: Path
    home: Path
    version: str


# --------------------------------------------------------------------------- helpers


def default_lib_dir(version: str = NEO4J_VERSION) -> Path:
    """Shared jar cache, ``$XDG_CACHE_HOME/sitegraph/neo4j-<version>/lib`` (``~/.cache`` default)."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "sitegraph" / f"neo4j-{version}" / "lib"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Same option the server uses, so a port in TIME_WAIT does not count as taken.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def _port_accepts(port: int, host: str = "127.0.0.1", timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def find_java(java: str | None = None) -> str:
    """Path of the java executable: explicit, then ``$JAVA_HOME/bin/java``, then PATH."""
    if java:
        found = shutil.which(java)
        if found is None:
            raise LocalServerError(f"Java executable {java!r} was not found; {_JAVA_INSTALL_HINT}.")
        return found
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if os.access(candidate, os.X_OK):
            return str(candidate)
        logger.warning("JAVA_HOME=%s has no bin/java; looking for java on PATH", java_home)
    found = shutil.which("java")
    if found is None:
        raise LocalServerError(
            f"Java is required to run Neo4j but `java` is not on PATH and JAVA_HOME is not set; {_JAVA_INSTALL_HINT}."
        )
    return found


def java_major_version(java: str) -> int:
    """Major version of a java executable (``1.8`` -> 8, ``17.0.15`` -> 17)."""
    try:
        proc = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60, check=False)
    except OSError as exc:
        raise LocalServerError(f"Could not run {java!r}: {exc}; {_JAVA_INSTALL_HINT}.") from exc
    except subprocess.TimeoutExpired as exc:
        raise LocalServerError(f"`{java} -version` did not answer within 60 s.") from exc
    text = proc.stderr + proc.stdout
    match = re.search(r'version "(\d+)(?:\.(\d+))?', text)
    if match is None:
        raise LocalServerError(f"Could not read the Java version from `{java} -version`: {text!r}")
    major = int(match.group(1))
    if major == 1 and match.group(2) is not None:
        major = int(match.group(2))
    return major


def find_mvn() -> str:
    found = shutil.which("mvn")
    if found is None:
        raise LocalServerError(
            "Apache Maven (`mvn`) is required to download the Neo4j server jars from "
            f"Maven Central but is not on PATH; {_MVN_INSTALL_HINT}."
        )
    return found


def classpath(lib_dir: Path) -> str:
    """The jars of ``lib_dir`` as an explicit classpath in name order (what ``lib_dir/*`` gives, but in
    a fixed order, which a class-data sharing archive needs to match the JVM it was made by)."""
    jars = sorted(p.name for p in lib_dir.glob("*.jar"))
    if not jars:
        return str(lib_dir / "*")
    return os.pathsep.join(str(lib_dir / name) for name in jars)


#: ``SITEGRAPH_NEO4J_CDS=0`` turns the class-data sharing archives off.
_CDS_ENV = "SITEGRAPH_NEO4J_CDS"


class ClassArchive:
    """An AppCDS archive (Java's class-data sharing) for one kind of Neo4j JVM: the server or the importer.

    A JVM that starts with it maps the classes it loaded last time (parsed and verified) instead of
    reading them from ~200 jars, which is most of a cold start. There is none at first: the JVM is
    then told to write one when it exits (``-XX:ArchiveClassesAtExit``, into a file of its own), and
    :meth:`promote` checks that file with the same JVM and classpath (``-Xshare:on`` with checksums)
    before it becomes the archive others use. The archive's name holds a fingerprint of the java
    executable and the jars, so another Java or other jars simply make (and then use) another one.
    A JVM that cannot use an archive runs without it; ``SITEGRAPH_NEO4J_CDS=0`` turns them off.
    """

    def __init__(self, lib_dir: Path, java: str, kind: str) -> None:
        self.lib_dir = lib_dir
        self.java = java
        self.kind = kind
        self._path: Path | None = None

    @staticmethod
    def enabled() -> bool:
        return os.environ.get(_CDS_ENV, "1").strip().lower() not in ("0", "false", "no", "off")

    @property
    def path(self) -> Path:
        if self._path is None:
            digest = hashlib.sha256()
            java = Path(self.java).resolve()
            for item in [java, *sorted(self.lib_dir.glob("*.jar"))]:
                try:
                    st = item.stat()
                except OSError:
                    continue
                digest.update(f"{item.name if item != java else item}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
            self._path = self.lib_dir.parent / "cds" / f"{self.kind}-{digest.hexdigest()[:16]}.jsa"
        return self._path

    def flags(self, dump_to: Path) -> list[str]:
        """JVM flags: use the archive if there is one, else write one to ``dump_to`` at exit."""
        if not self.enabled():
            return []
        if self.path.is_file():
            return [f"-XX:SharedArchiveFile={self.path}", "-Xlog:cds=off", "-Xlog:cds+dynamic=off"]
        with contextlib.suppress(OSError):
            dump_to.unlink()
        return [f"-XX:ArchiveClassesAtExit={dump_to}", "-Xlog:cds=off", "-Xlog:cds+dynamic=off"]

    def promote(self, dump_to: Path) -> bool:
        """Make ``dump_to`` (a JVM's archive written at its exit) the archive, if it is whole and works."""
        if not dump_to.is_file():
            return False
        try:
            if self.enabled() and not self.path.is_file():
                proc = subprocess.run(
                    [
                        self.java,
                        "-Xshare:on",
                        "-XX:+VerifySharedSpaces",
                        f"-XX:SharedArchiveFile={dump_to}",
                        "-cp",
                        classpath(self.lib_dir),
                        "-version",
                    ],
                    capture_output=True,
                    text=True,
                    timeout=120,
                    check=False,
                    stdin=subprocess.DEVNULL,
                )
                if proc.returncode == 0:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(dump_to, self.path)
                    logger.info("Class-data sharing archive for the Neo4j %s: %s", self.kind, self.path)
                    return True
                logger.info("Not using the class-data sharing archive %s: %s", dump_to, proc.stdout + proc.stderr)
        except (OSError, subprocess.TimeoutExpired) as exc:
            logger.info("Could not check the class-data sharing archive %s: %s", dump_to, exc)
        finally:
            with contextlib.suppress(OSError):
                dump_to.unlink()
        return False

    def discard(self) -> None:
        """Remove the archive (a JVM that used it failed to start)."""
        with contextlib.suppress(OSError):
            self.path.unlink()


@contextlib.contextmanager
def _packaged_pom() -> Iterator[Path]:
    """The packaged ``neo4j_dist/pom.xml`` as a real file path."""
    fallback = Path(__file__).resolve().parent / "neo4j_dist" / "pom.xml"
    try:
        from importlib.resources import as_file, files

        resource = files("sitegraph.graph") / "neo4j_dist" / "pom.xml"
        if resource.is_file():
            with as_file(resource) as path:
                yield Path(path)
                return
    except (ImportError, ModuleNotFoundError, TypeError, OSError):
        logger.debug("package resource lookup failed; using %s", fallback, exc_info=True)
    if not fallback.is_file():
        raise LocalServerError(f"The packaged Neo4j pom is missing (looked for {fallback}).")
    yield fallback


def _tail(path: Path, lines: int = _CONSOLE_TAIL_LINES) -> str:
    try:
        with path.open("r", encoding="utf-8", errors="replace") as fh:
            return "".join(deque(fh, maxlen=lines))
    except OSError:
        return f"(no output: {path} is missing)"


def _pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie; reaps it if it is our child."""
    try:
        reaped, _status = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    except ChildProcessError:
        pass  # not our child
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        try:
            # state is the field after the parenthesised command name
            state = stat.read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return True
        return state not in ("Z", "X")
    return True


def _cmdline(pid: int) -> str | None:
    path = Path(f"/proc/{pid}/cmdline")
    try:
        return path.read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return None


def _conf_value(value: str) -> str:
    if "\n" in value or "\r" in value:
        raise LocalServerError(f"neo4j.conf values must be single-line, got {value!r}")
    return value


# --------------------------------------------------------------------------- server


class LocalNeo4j:
    """A Neo4j Community server run from jars under ``lib_dir`` with its state under ``home``.

    ``home`` gets ``conf/neo4j.conf``, ``data/``, ``logs/`` (with ``console.log``),
    ``run/`` (pid file), ``plugins/``, ``import/``, ``data/transactions/`` and the
    generated ``password`` file.
    """

    def __init__(
        self,
        home: Path,
        bolt_port: int = 7687,
        http_port: int = 7474,
        heap: str = "512m",
        pagecache: str = "256m",
        extra_config: Mapping[str, str] | None = None,
        lib_dir: Path | None = None,
        java: str | None = None,
        *,
        browser_allowlist: str = "*",
        host: str = "127.0.0.1",
    ) -> None:
        self.home = Path(home).expanduser().resolve()
        self.bolt_port = int(bolt_port)
        self.http_port = int(http_port)
        if self.bolt_port == self.http_port:
            raise LocalServerError(f"bolt_port and http_port must differ (both {bolt_port})")
        for name, value in (("heap", heap), ("pagecache", pagecache)):
            if not re.fullmatch(r"\d+[kKmMgG]?", value):
                raise LocalServerError(f"{name} must look like 512m or 1g, got {value!r}")
        self.heap = heap
        self.pagecache = pagecache
        self.extra_config: dict[str, str] = dict(extra_config or {})
        self.lib_dir = Path(lib_dir).expanduser().resolve() if lib_dir else default_lib_dir()
        self.java = java
        self.browser_allowlist = browser_allowlist
        self.host = host
        self.version = NEO4J_VERSION
        self.user = DEFAULT_USER
        self._proc: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"LocalNeo4j(home={str(self.home)!r}, bolt_port={self.bolt_port}, http_port={self.http_port})"

    @classmethod
    def from_home(cls, home: Path) -> LocalNeo4j | None:
        """The instance whose ``conf/neo4j.conf`` (written by :meth:`write_config`) is under ``home``,
        with the ports, memory, jar folder and extra settings it was started with; None if there is none.

        So another process (``sitegraph load`` against a server that ``sitegraph neo4j start`` or the
        benchmark started) can stop and start the same server again.
        """
        home = Path(home).expanduser().resolve()
        try:
            text = (home / "conf" / "neo4j.conf").read_text(encoding="utf-8")
        except OSError:
            return None
        cfg: dict[str, str] = {}
        lib_dir: Path | None = None
        for line in text.splitlines():
            if line.startswith("# Neo4j ") and ", jars from " in line:
                lib_dir = Path(line.split(", jars from ", 1)[1].strip())
            elif line and not line.startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                cfg[key] = value
        try:
            bolt = int(cfg["server.bolt.listen_address"].rsplit(":", 1)[1])
            http = int(cfg["server.http.listen_address"].rsplit(":", 1)[1])
            server = cls(
                home,
                bolt_port=bolt,
                http_port=http,
                heap=cfg["server.memory.heap.max_size"],
                pagecache=cfg["server.memory.pagecache.size"],
                lib_dir=lib_dir,
                browser_allowlist=cfg.get("browser.remote_content_hostname_whitelist", "*"),
                host=cfg.get("server.default_listen_address", "127.0.0.1"),
            )
        except (KeyError, IndexError, ValueError, LocalServerError):
            return None
        base = server.config()
        server.extra_config = {k: v for k, v in cfg.items() if base.get(k) != v}
        return server

    # ---- paths and addresses

    @property
    def conf_dir(self) -> Path:
        return self.home / "conf"

    @property
    def conf_file(self) -> Path:
        return self.conf_dir / "neo4j.conf"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / _PID_FILE_NAME

    @property
    def console_log(self) -> Path:
        return self.logs_dir / "console.log"

    @property
    def password_file(self) -> Path:
        return self.home / "password"

    @property
    def uri(self) -> str:
        """Routing URI (``neo4j://``); works against this single instance."""
        return f"neo4j://{self.host}:{self.bolt_port}"

    @property
    def bolt_direct_uri(self) -> str:
        return f"bolt://{self.host}:{self.bolt_port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}/"

    @property
    def browser_url(self) -> str:
        return f"http://{self.host}:{self.http_port}/browser/"

    @property
    def auth(self) -> tuple[str, str]:
        return (self.user, self.password)

    # ---- password

    @property
    def password(self) -> str:
        """The ``neo4j`` user's password, generated and stored (mode 0600) on first use."""
        try:
            value = self.password_file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            value = ""
        if value:
            return value
        if self._is_initialised():
            raise LocalServerError(self._lost_password_message())
        self.home.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(24)
        while not value[0].isalnum():  # keep it from looking like a command-line option
            value = secrets.token_urlsafe(24)
        try:
            fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # created concurrently
            return self.password_file.read_text(encoding="utf-8").strip()
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(value + "\n")
        logger.info("Generated the Neo4j password in %s", self.password_file)
        return value

    # ---- install

    def _java(self) -> str:
        java = find_java(self.java)
        major = java_major_version(java)
        if major < MIN_JAVA_VERSION:
            raise LocalServerError(
                f"Neo4j {NEO4J_VERSION} needs Java {MIN_JAVA_VERSION} or 21, but {java} is Java {major}; {_JAVA_INSTALL_HINT}."
            )
        if major > MAX_TESTED_JAVA_VERSION:
            logger.warning(
                "Neo4j %s supports Java 17 and 21; %s is Java %d, trying anyway",
                NEO4J_VERSION,
                java,
                major,
            )
        return java

    def _marker_text(self) -> str:
        return f"neo4j={NEO4J_VERSION}\nneo4j-browser={BROWSER_VERSION}\n"

    def is_installed(self) -> bool:
        marker = self.lib_dir / _MARKER_NAME
        try:
            return marker.read_text(encoding="utf-8") == self._marker_text()
        except OSError:
            return False

    def install(self) -> Path:
        """Ensure the server jars are in ``lib_dir`` (downloads ~140 MB once); returns ``lib_dir``."""
        if self.is_installed():
            return self.lib_dir
        mvn = find_mvn()
        self._java()  # Maven needs Java too; fail early with a clear message
        parent = self.lib_dir.parent
        parent.mkdir(parents=True, exist_ok=True)
        with (parent / ".install.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be installing
            if self.is_installed():
                return self.lib_dir
            staging = parent / f".{self.lib_dir.name}.partial-{os.getpid()}"
            shutil.rmtree(staging, ignore_errors=True)
            started = time.monotonic()
            logger.info(
                "Downloading Neo4j %s and Neo4j Browser %s from Maven Central into %s (first time only, about 140 MB)",
                NEO4J_VERSION,
                BROWSER_VERSION,
                self.lib_dir,
            )
            try:
                with _packaged_pom() as pom:
                    self._run_mvn(mvn, pom, staging)
                jars = list(staging.glob("*.jar"))
                if not any(j.name == f"neo4j-{NEO4J_VERSION}.jar" for j in jars):
                    raise LocalServerError(f"Maven finished but neo4j-{NEO4J_VERSION}.jar is not in {staging}")
                (staging / _MARKER_NAME).write_text(self._marker_text(), encoding="utf-8")
                if self.lib_dir.exists():
                    shutil.rmtree(self.lib_dir)
                staging.rename(self.lib_dir)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            logger.info(
                "Installed %d jars in %s in %.1f s",
                len(jars),
                self.lib_dir,
                time.monotonic() - started,
            )
        return self.lib_dir

    def _run_mvn(self, mvn: str, pom: Path, output_dir: Path) -> None:
        cmd = [
            mvn,
            "-B",
            "--no-transfer-progress",
            "-Dstyle.color=never",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={output_dir}",
            "-DincludeScope=runtime",
            f"-Dneo4j.version={NEO4J_VERSION}",
            f"-Dneo4j-browser.version={BROWSER_VERSION}",
        ]
        env = dict(os.environ)
        if self.java and "JAVA_HOME" not in env:
            java_path = Path(find_java(self.java)).resolve()
            env["JAVA_HOME"] = str(java_path.parent.parent)
        logger.debug("Running %s", " ".join(cmd))
        tail: deque[str] = deque(maxlen=40)
        try:
            proc = subprocess.Popen(
                cmd,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                env=env,
                cwd=str(pom.parent),
            )
        except OSError as exc:
            raise LocalServerError(f"Could not run Maven ({mvn}): {exc}") from exc
        assert proc.stdout is not None
        with proc:
            for line in proc.stdout:
                line = _ANSI_ESCAPE.sub("", line).rstrip()
                if not line:
                    continue
                tail.append(line)
                if line.startswith(("Downloading from", "Downloaded from", "[INFO] Copying ")):
                    logger.debug("mvn: %s", line)
                else:
                    logger.info("mvn: %s", line)
            rc = proc.wait()
        if rc != 0:
            raise LocalServerError(
                f"Maven failed (exit {rc}) while downloading the Neo4j jars; is Maven Central "
                "reachable?  Last output:\n" + "\n".join(tail)
            )

    # ---- configuration

    def config(self) -> dict[str, str]:
        """The neo4j.conf settings this instance runs with (``extra_config`` last)."""
        home = self.home
        addr = self.host
        cfg: dict[str, str] = {
            "server.directories.data": str(home / "data"),
            "server.directories.logs": str(home / "logs"),
            "server.directories.run": str(home / "run"),
            "server.directories.plugins": str(home / "plugins"),
            "server.directories.import": str(home / "import"),
            "server.directories.transaction.logs.root": str(home / "data" / "transactions"),
            "dbms.security.auth_enabled": "true",
            "server.default_listen_address": addr,
            "server.default_advertised_address": addr,
            "server.bolt.enabled": "true",
            "server.bolt.listen_address": f"{addr}:{self.bolt_port}",
            "server.bolt.advertised_address": f"{addr}:{self.bolt_port}",
            "server.http.enabled": "true",
            "server.http.listen_address": f"{addr}:{self.http_port}",
            "server.http.advertised_address": f"{addr}:{self.http_port}",
            "server.https.enabled": "false",
            "dbms.usage_report.enabled": "false",
            "client.allow_telemetry": "false",
            "server.memory.heap.initial_size": self.heap,
            "server.memory.heap.max_size": self.heap,
            "server.memory.pagecache.size": self.pagecache,
            # 5.26 name of the setting (later versions call it ..._allowlist)
            "browser.remote_content_hostname_whitelist": self.browser_allowlist,
            **_FAST_SHUTDOWN_CONFIG,
        }
        cfg.update(self.extra_config)
        if cfg.get("dbms.security.auth_enabled", "true").strip().lower() != "true":
            raise LocalServerError("dbms.security.auth_enabled must stay true for LocalNeo4j")
        return cfg

    def write_config(self) -> Path:
        """Write ``conf/neo4j.conf`` and create the instance directories."""
        for sub in ("conf", "data", "logs", "run", "plugins", "import"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        lines = [
            "# Written by sitegraph.graph.localserver; rewritten on every start.",
            f"# Neo4j {NEO4J_VERSION}, jars from {self.lib_dir}",
        ]
        lines += [f"{key}={_conf_value(value)}" for key, value in self.config().items()]
        tmp = self.conf_file.with_suffix(".conf.tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        tmp.replace(self.conf_file)
        return self.conf_file

    @property
    def _cds_dump(self) -> Path:
        """Where a server started without a class-data sharing archive writes one when it exits."""
        return self.run_dir / "server-classes.jsa"

    def jvm_command(self, java: str, *, cds: bool = True) -> list[str]:
        """The full java command line that launches the server (with the class-data sharing
        archive's flags unless ``cds`` is false: :class:`ClassArchive`)."""
        return [
            java,
            f"-Xms{self.heap}",
            f"-Xmx{self.heap}",
            *JVM_FLAGS,
            *(ClassArchive(self.lib_dir, java, "server").flags(self._cds_dump) if cds else []),
            "-cp",
            classpath(self.lib_dir),
            ENTRY_POINT,
            f"--home-dir={self.home}",
            f"--config-dir={self.conf_dir}",
            "--console-mode",
        ]

    def _neo4j_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["NEO4J_HOME"] = str(self.home)
        env["NEO4J_CONF"] = str(self.conf_dir)
        return env

    def _is_initialised(self) -> bool:
        return (self.data_dir / "databases" / "system").exists()

    def _lost_password_message(self) -> str:
        return (
            f"{self.data_dir} already holds a database but {self.password_file} is missing, so the password "
            f"of user 'neo4j' is unknown; restore the file, or delete {self.data_dir} to start from an empty database."
        )

    def _set_initial_password(self, java: str) -> None:
        """``neo4j-admin dbms set-initial-password`` via AdminTool, password kept off argv."""
        argfile = self.run_dir / "set-initial-password.args"
        fd = os.open(argfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(f"dbms\nset-initial-password\n--\n{self.password}\n")
        try:
            proc = subprocess.run(
                [java, *_ADMIN_JVM_FLAGS, "-cp", str(self.lib_dir / "*"), ADMIN_TOOL, f"@{argfile}"],
                capture_output=True,
                text=True,
                env=self._neo4j_env(),
                cwd=str(self.home),
                stdin=subprocess.DEVNULL,
                timeout=180,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise LocalServerError("neo4j-admin set-initial-password did not finish in 180 s") from exc
        finally:
            argfile.unlink(missing_ok=True)
        if proc.returncode != 0:
            raise LocalServerError(
                f"Setting the initial Neo4j password failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}"
            )
        logger.info("Set the initial password of user %r", self.user)

    # ---- process state

    def pid(self) -> int | None:
        """Pid of this instance's server if it is alive, else None (stale pid files are removed)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        ours = self._proc is not None and self._proc.pid == pid
        alive = self._proc.poll() is None if ours and self._proc is not None else _pid_alive(pid)
        if alive:
            cmd = _cmdline(pid)
            # Guard against pid reuse after a reboot or crash.
            if cmd is not None and (ENTRY_POINT not in cmd or f"--home-dir={self.home}" not in cmd):
                alive = False
        if not alive:
            logger.debug("Removing stale pid file %s (pid %d)", self.pid_file, pid)
            self.pid_file.unlink(missing_ok=True)
            return None
        return pid

    def is_running(self) -> bool:
        return self.pid() is not None

    def status(self) -> ServerStatus:
        pid = self.pid()
        return ServerStatus(
            running=pid is not None,
            pid=pid,
            bolt_uri=self.uri,
            browser_url=self.browser_url,
            user=self.user,
            password_file=self.password_file,
            home=self.home,
            version=self.version,
        )

    # ---- driver helpers

    def driver(self, **kwargs: Any) -> neo4j.Driver:
        """An authenticated driver for :attr:`uri` (the caller closes it)."""
        import neo4j

        return neo4j.GraphDatabase.driver(self.uri, auth=self.auth, **kwargs)

    def _bolt_ready(self) -> bool:
        """True once an authenticated connectivity check succeeds; AuthError propagates."""
        import neo4j
        from neo4j.exceptions import AuthError

        if not _port_accepts(self.bolt_port, self.host):
            return False
        try:
            with neo4j.GraphDatabase.driver(self.uri, auth=self.auth, connection_timeout=5.0) as drv:
                drv.verify_connectivity()
            return True
        except AuthError:
            raise
        except Exception as exc:  # server still starting: ServiceUnavailable, transient errors
            logger.debug("Bolt not ready yet: %s", exc)
            return False

    def bolt_ready(self) -> bool:
        """True if the server answers an authenticated Bolt connectivity check right now (one try, no
        retries: the driver's own retries back off for seconds while a server starts)."""
        try:
            return self._bolt_ready()
        except Exception:
            return False

    def _http_ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.http_url, timeout=5) as resp:  # noqa: S310 (our http:// URL)
                return int(resp.status) == 200
        except (urllib.error.URLError, OSError):
            return False

    def ping(self) -> bool:
        """True if this instance answers on Bolt (authenticated) and HTTP right now."""
        try:
            return self._bolt_ready() and self._http_ready()
        except Exception:
            return False

    # ---- start / stop

    def start(self, timeout: float = 180) -> None:
        """Start the server (no-op if already running) and wait until Bolt and HTTP answer."""
        started = time.monotonic()
        deadline = started + timeout
        existing = self.pid()
        if existing is not None:
            logger.info("Neo4j in %s is already running (pid %d)", self.home, existing)
            self._wait_ready(existing, deadline, started, proc=None)
            return

        self.install()
        java = self._java()
        for name, port in (("Bolt", self.bolt_port), ("HTTP", self.http_port)):
            if _port_in_use(port, self.host):
                raise LocalServerError(
                    f"{name} port {self.host}:{port} is already in use by another process "
                    f"(not the Neo4j of {self.home}); stop that process or choose another port."
                )

        self.write_config()
        if not self._is_initialised():
            self._set_initial_password(java)
        elif not self.password_file.exists():
            raise LocalServerError(self._lost_password_message())

        archive = ClassArchive(self.lib_dir, java, "server")
        archive.promote(self._cds_dump)  # written when the server last exited (if it had no archive)
        try:
            self._launch(java, deadline, started, cds=True)
        except LocalServerError as exc:
            crashed = "fatal error has been detected" in str(exc) or "shared archive" in str(exc).lower()
            if not (crashed and ClassArchive.enabled() and archive.path.is_file()):
                raise
            # A JVM that cannot use an archive runs without it; this is for one that crashed on it.
            logger.warning("Neo4j did not start with the class-data sharing archive %s; starting without it", archive.path)
            archive.discard()
            self._launch(java, deadline, started, cds=False)

    def _launch(self, java: str, deadline: float, started: float, *, cds: bool) -> None:
        if self.console_log.exists():
            self.console_log.replace(self.console_log.with_name("console.log.1"))
        cmd = self.jvm_command(java, cds=cds)
        logger.info(
            "Starting Neo4j %s in %s (bolt %s, http %d, heap %s, page cache %s)",
            NEO4J_VERSION,
            self.home,
            self.uri,
            self.http_port,
            self.heap,
            self.pagecache,
        )
        logger.debug("Command: %s", " ".join(cmd))
        with self.console_log.open("wb") as log:
            try:
                proc = subprocess.Popen(
                    cmd,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    cwd=str(self.home),
                    env=self._neo4j_env(),
                    start_new_session=True,
                    close_fds=True,
                )
            except OSError as exc:
                raise LocalServerError(f"Could not launch {java}: {exc}") from exc
        self._proc = proc
        tmp_pid = self.pid_file.with_suffix(".tmp")
        tmp_pid.write_text(f"{proc.pid}\n")
        tmp_pid.replace(self.pid_file)
        try:
            self._wait_ready(proc.pid, deadline, started, proc=proc)
        except BaseException:
            self._kill(proc.pid, timeout=30)
            raise

    def _wait_ready(
        self,
        pid: int,
        deadline: float,
        started: float,
        proc: subprocess.Popen[bytes] | None,
    ) -> None:
        from neo4j.exceptions import AuthError

        delay = 0.25
        while True:
            exited = proc.poll() is not None if proc is not None else not _pid_alive(pid)
            if exited:
                code = f" with exit code {proc.returncode}" if proc is not None else ""
                raise LocalServerError(
                    f"Neo4j (pid {pid}) exited{code} before it was ready. "
                    f"Last lines of {self.console_log}:\n{_tail(self.console_log)}"
                )
            try:
                if self._bolt_ready() and self._http_ready():
                    logger.info(
                        "Neo4j is ready at %s and %s after %.1f s (pid %d)",
                        self.uri,
                        self.browser_url,
                        time.monotonic() - started,
                        pid,
                    )
                    return
            except AuthError as exc:
                raise LocalServerError(f"Neo4j in {self.home} rejected the password in {self.password_file}: {exc}") from exc
            if time.monotonic() >= deadline:
                raise LocalServerError(
                    f"Neo4j (pid {pid}) did not answer on {self.uri} and {self.http_url} within "
                    f"the timeout; it is being stopped. Last lines of {self.console_log}:\n"
                    f"{_tail(self.console_log)}"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def _signal(self, pid: int, sig: signal.Signals) -> None:
        try:
            if os.getpgid(pid) == pid:  # we started it as a session/group leader
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def _exited(self, pid: int) -> bool:
        if self._proc is not None and self._proc.pid == pid:
            return self._proc.poll() is not None
        return not _pid_alive(pid)

    def _kill(self, pid: int, timeout: float) -> None:
        self._signal(pid, signal.SIGTERM)
        end = time.monotonic() + timeout
        killed = False
        while time.monotonic() < end:
            if self._exited(pid):
                break
            time.sleep(0.1)
        else:
            killed = True
            logger.warning("Neo4j (pid %d) did not stop within %.0f s; killing it", pid, timeout)
            self._signal(pid, signal.SIGKILL)
            end = time.monotonic() + 10
            while time.monotonic() < end and not self._exited(pid):
                time.sleep(0.1)
        self.pid_file.unlink(missing_ok=True)
        if self._proc is not None and self._proc.pid == pid:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=1)
            self._proc = None
        if killed:
            with contextlib.suppress(OSError):
                self._cds_dump.unlink()  # possibly cut short
        elif self._cds_dump.is_file():  # written at its exit: the archive the next starts use
            with contextlib.suppress(LocalServerError):
                ClassArchive(self.lib_dir, find_java(self.java), "server").promote(self._cds_dump)

    def stop(self, timeout: float = 60) -> bool:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout``); True if it was running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        logger.info("Stopping Neo4j in %s (pid %d)", self.home, pid)
        started = time.monotonic()
        self._kill(pid, timeout)
        logger.info("Neo4j stopped after %.1f s", time.monotonic() - started)
        return True

    def __enter__(self) -> LocalNeo4j:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def temporary_instance(base_dir: Path, **kw: Any) -> Iterator[LocalNeo4j]:
    """Start an instance under ``base_dir/neo4j`` on two free ports; stop it afterwards.

    Keyword arguments go to :class:`LocalNeo4j` (``bolt_port``/``http_port`` override
    the free ports; ``start_timeout`` is passed to :meth:`LocalNeo4j.start`).
    """
    start_timeout = float(kw.pop("start_timeout", 180))
    bolt_port = int(kw.pop("bolt_port", 0)) or free_port()
    http_port = int(kw.pop("http_port", 0)) or free_port()
    while http_port == bolt_port:
        http_port = free_port()
    server = LocalNeo4j(Path(base_dir) / "neo4j", bolt_port=bolt_port, http_port=http_port, **kw)
    try:
        server.start(timeout=start_timeout)
        yield server
    finally:
        server.stop()
