"""Neo4j Browser, for real: headless Debian Chromium driven by Playwright runs the guide's queries.

The test starts nothing it does not stop: the session's Neo4j (``neo4j_server`` from conftest, with
the demo data loaded here), the guide server on a free port, and a Chromium with a fresh profile.
It logs in, loads the guide with ``:play``, applies the style from the guide's first slide, runs the
first catalogue query (a site's 360° neighbourhood) from its slide and a table query typed into the
editor, and fails unless the graph and the table both appear. The graph's screenshot goes to
``tests/artifacts/browser-result.png`` (a failure leaves ``browser-failure.png`` instead).

Needs: ``apt-get install chromium`` (``/usr/bin/chromium``, or set ``SITEGRAPH_CHROMIUM``) and the
``playwright`` Python package; no browser is ever downloaded (``executable_path`` is always given).
Without them the test is skipped, and fails under ``CI=true``.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from sitegraph.demo import build_demo
from sitegraph.graph.neo4j_store import Neo4jStore
from sitegraph.queries.browser.server import GuideServer
from sitegraph.queries.catalogue import load_catalogue, run_query
from tests.conftest import unavailable

if TYPE_CHECKING:
    from playwright.sync_api import ElementHandle, Locator, Page

try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
except ImportError:  # the test skips (or fails in CI) below
    PlaywrightTimeoutError = TimeoutError  # type: ignore[misc,assignment]

pytestmark = [pytest.mark.e2e, pytest.mark.neo4j]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
SCREENSHOT = ARTIFACTS / "browser-result.png"
CHROMIUM = os.environ.get("SITEGRAPH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# Known to work headless here; without the background-networking flags Chromium keeps trying Google hosts.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 60_000


def _unavailable(reason: str) -> NoReturn:
    unavailable(f"the browser test cannot run: {reason}")


@pytest.fixture(scope="module")
def server_with_demo(neo4j_server: Any) -> Iterator[Any]:
    """The session's Neo4j holding the demo data (loaded unless the catalogue tests already did)."""
    store = Neo4jStore(neo4j_server.uri, "neo4j", neo4j_server.password)
    try:
        site_id = load_catalogue()["site-360"].example_params()["site_id"]
        if store.get_node("Site", site_id) is None or not store.read("MATCH (:Interaction) RETURN 1 AS x LIMIT 1"):
            store.clear(confirm=True)
            build_demo(store)
        yield neo4j_server
    finally:
        store.close()


class BrowserSession:
    """Neo4j Browser in one page: type and run commands, click guide blocks, find result frames.

    Frames are returned as element handles: the stream shows the newest frame first, so a locator
    such as "the first frame" would move on to the next command's frame.
    """

    def __init__(self, page: Page) -> None:
        self.page = page

    def frames(self) -> Locator:
        return self.page.get_by_test_id("frame")

    def _run_editor(self) -> ElementHandle:
        """Click Run and return the new frame."""
        before = self.frames().count()
        self.page.get_by_test_id("editor-Run").click()
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while self.frames().count() <= before:
            if time.monotonic() > deadline:
                raise AssertionError("running the editor's command added no result frame")
            self.page.wait_for_timeout(100)
        handle = self.frames().first.element_handle()
        assert handle is not None
        return handle

    def type_and_run(self, command: str) -> ElementHandle:
        self.page.get_by_test_id("activeEditor").click()
        self.page.keyboard.press("Control+A")
        self.page.keyboard.press("Delete")
        self.page.keyboard.insert_text(command)
        return self._run_editor()

    def click_block_and_run(self, block: ElementHandle, expected: str) -> ElementHandle:
        """Click a guide's runnable block (it fills the editor), wait for the editor to show it, run it."""
        block.click()
        editor = self.page.get_by_test_id("activeEditor").element_handle()
        first_line = expected.splitlines()[0].strip()[:40]
        self.page.wait_for_function(
            "([el, text]) => el.innerText.replace(/\\u00a0/g, ' ').includes(text)", arg=[editor, first_line], timeout=10_000
        )
        return self._run_editor()

    def connect(self, bolt_port: int, password: str) -> None:
        page = self.page
        page.get_by_test_id("bolt-scheme-select").select_option("neo4j://")
        page.get_by_test_id("boltaddress").fill(f"127.0.0.1:{bolt_port}")
        page.get_by_test_id("username").fill("neo4j")
        page.get_by_test_id("password").fill(password)
        page.get_by_test_id("connect").click()
        page.get_by_test_id("disconnectedBanner").wait_for(state="detached", timeout=TIMEOUT_MS)

    def play(self, url: str) -> ElementHandle:
        """``:play url`` until the guide shows (Browser reads the server's allow-list just after login)."""
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while True:
            frame = self.type_and_run(f":play {url}")
            try:
                frame.wait_for_selector("pre.runnable", timeout=5_000)
                return frame
            except PlaywrightTimeoutError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"Browser did not show the guide from {url}: {frame.inner_text()[:500]}") from None


def _block(frame: ElementHandle, starts_with: str) -> ElementHandle:
    """The guide frame's (visible slide's) runnable block whose text starts with ``starts_with``."""
    for block in frame.query_selector_all("pre.runnable"):
        if block.inner_text().strip().startswith(starts_with):
            return block
    raise AssertionError(f"no runnable block starting with {starts_with!r} on the guide's current slide")


def _wait_for_params(frame: ElementHandle, params: dict[str, Any]) -> None:
    """Wait until Browser confirms a ``:params`` frame: a query run before that may see none of the parameters."""
    try:
        frame.wait_for_selector("text=Successfully set your parameters.", state="attached", timeout=TIMEOUT_MS)
    except Exception as e:
        raise AssertionError(f":params was not confirmed; its frame shows: {frame.inner_text()[:500]!r}") from e
    shown = frame.inner_text()
    assert all(name in shown for name in params), shown[:500]


def test_browser_shows_catalogue_results(server_with_demo: Any, tmp_path: Path) -> None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright Python package is not installed (pip install playwright; no browser download needed)")
    if not Path(CHROMIUM).exists():
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")

    server = server_with_demo
    catalogue = load_catalogue()
    site_360 = catalogue["site-360"]
    pagerank = catalogue["sites-by-pagerank"]
    store = Neo4jStore(server.uri, "neo4j", server.password)
    try:
        expected_site = run_query(store, site_360, site_360.example_params())[0]["path"][0]["name"]
        expected_top = run_query(store, pagerank, pagerank.example_params())[0]["site"]
    finally:
        store.close()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    failure = ARTIFACTS / "browser-failure.png"
    failure.unlink(missing_ok=True)

    with GuideServer(port=0) as guide, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
        )
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        try:
            session = BrowserSession(page)
            page.goto(server.browser_url)
            session.connect(server.bolt_port, server.password)

            # The guide, served by the guide server, shown by :play; the style from its first slide.
            guide_frame = session.play(guide.guide_url)
            style_frame = session.click_block_and_run(_block(guide_frame, ":style"), ":style node {")
            style_frame.wait_for_selector("text=node.Site", state="attached")
            served_style = session.type_and_run(guide.style_command)  # the same style, fetched from the guide server
            served_style.wait_for_selector("text=node.Investigator", state="attached")

            # The first query's slide: its :params block, then the query itself.
            next_slide = guide_frame.query_selector('[data-testid="nextSlide"]')
            assert next_slide is not None, "the guide has no next-slide button"
            next_slide.click()
            params_block = _block(guide_frame, ":params")
            assert params_block.inner_text().strip() == site_360.params_command()
            params_frame = session.click_block_and_run(params_block, site_360.params_command())
            _wait_for_params(params_frame, site_360.example_params())
            query_block = _block(guide_frame, "MATCH (s:Site {id: $site_id})")
            assert query_block.inner_text().strip() == site_360.cypher
            result = session.click_block_and_run(query_block, site_360.cypher)

            try:
                result.wait_for_selector("svg g.node", state="attached")
            except Exception as e:  # say what the frame shows instead (an error, a table, nothing yet)
                raise AssertionError(f"the Site 360 query drew no graph; its frame shows: {result.inner_text()[:800]!r}") from e
            page.wait_for_timeout(2_000)  # let the force layout settle before the screenshot
            nodes = result.query_selector_all("svg g.node")
            assert len(nodes) >= 5, "the graph has too few nodes"
            assert len(result.query_selector_all("svg g.relationship")) >= 4
            captions = [n.text_content() or "" for n in nodes]
            assert any(expected_site[:8] in text for text in captions), captions[:10]
            overview = result.inner_text()
            assert "Site" in overview and "Investigator" in overview  # the result overview lists the labels
            result.screenshot(path=str(SCREENSHOT))

            # A table result: typed into the editor with its parameters.
            _wait_for_params(session.type_and_run(pagerank.params_command()), pagerank.example_params())
            table = session.type_and_run(pagerank.cypher)
            table.wait_for_selector("tr.relatable__table-body-row")
            rows = table.query_selector_all("tr.relatable__table-body-row")
            assert len(rows) == pagerank.example_params()["limit"]
            assert expected_top in rows[0].inner_text()
        except BaseException:
            page.screenshot(path=str(failure), full_page=True)
            raise
        finally:
            context.close()
    assert SCREENSHOT.stat().st_size > 10_000
