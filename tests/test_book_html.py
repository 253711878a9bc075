"""Open every page of the built book in headless Chromium, offline, and fail on anything broken.

Needs the book built first (`python scripts/build_book.py`) and Debian's `chromium`
(`apt-get install chromium`); Python's `playwright` drives it (no browser download).
Run: `pytest tests/test_book_html.py`. Under CI (CI=true) a missing browser or book is an
error, not a skip.

Per page, it fails on: a JavaScript error (any: sphinx-thebe's doubled configuration script is
removed by scripts/book_ext.py); a request that fails, returns >= 400, or leaves the
machine (the book must read offline); an image that did not load; math that MathJax did not
typeset; a widget area that stayed empty. And the sidebar button opens and closes the chapter
list at desktop and phone widths.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "html"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def toc_pages() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]
    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                pages.append(entry["file"])
            walk(entry.get("sections"))
            for part in entry.get("chapters", []) if "chapters" in entry else []:
                walk([part])
    walk(toc.get("chapters"))
    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    return pages


def _unavailable(reason: str):
    if IN_CI:
        pytest.fail(reason + " (under CI the browser check must run)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def server():
    if not (HTML / "index.html").is_file():
        _unavailable(f"{HTML} has no built book: run `python scripts/build_book.py` first")
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        _unavailable(f"no Chromium at {CHROMIUM}: `apt-get install chromium`")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield b
        b.close()


def test_toc_lists_existing_pages():
    for page in toc_pages():
        assert any((ROOT / f"{page}{ext}").is_file() for ext in (".md", ".ipynb")), page


LAYOUT_PROBLEMS = """() => {
    const out = [];
    for (const pre of document.querySelectorAll('article pre')) {
        if (pre.scrollWidth > pre.clientWidth + 1 && pre.getClientRects().length)
            out.push(`code line wider than its box: ${pre.textContent.slice(0, 50)}`);
    }
    const article = document.querySelector('article.bd-article') || document.querySelector('article');
    if (article && article.scrollWidth > article.clientWidth + 1)
        out.push(`the article is ${article.scrollWidth} px wide in a ${article.clientWidth} px column`);
    return out;
}"""


WIDE_EQUATIONS = """() => [...document.querySelectorAll('mjx-container[display="true"]')]
    .filter(el => el.scrollWidth > el.clientWidth + 1)
    .map(el => { const cs = getComputedStyle(el);
        return {text: el.textContent.slice(0, 40), sw: el.scrollWidth, cw: el.clientWidth,
                overflow: cs.overflowX, attachment: cs.backgroundAttachment}; })"""


@pytest.mark.parametrize("page", toc_pages())
def test_page_renders_offline(page, server, browser):
    problems: list[str] = []
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()

    def route(r):
        if r.request.url.startswith(server):
            r.continue_()
        else:  # anything that leaves the machine would fail for an offline reader
            problems.append(f"external request: {r.request.url}")
            r.abort()

    pg.route("**/*", route)
    pg.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    pg.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} ({r.failure})")
          if r.url.startswith(server) else None)
    pg.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}")
          if r.status >= 400 else None)

    pg.goto(f"{server}/{page}.html", wait_until="networkidle")
    pg.wait_for_timeout(300)

    # Images: every <img> loaded and has a size.
    broken = pg.evaluate("""() => [...document.images]
        .filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)""")
    problems += [f"broken image: {src}" for src in broken]

    # Math: every math node that Sphinx emitted was typeset by MathJax.
    n_math = pg.locator(".math").count()
    if n_math:
        pg.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise",
                             timeout=20000)
        pg.evaluate("() => MathJax.startup.promise")
        untypeset = pg.evaluate("""() => [...document.querySelectorAll('.math')]
            .filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.slice(0, 60))""")
        problems += [f"math not typeset: {t!r}" for t in untypeset]

    # Widgets: each saved widget view was replaced by a rendered, visible widget.
    views = pg.locator('script[type="application/vnd.jupyter.widget-view+json"]').count()
    if views:
        pg.wait_for_function("""n => document.querySelectorAll('.jupyter-widgets.widget-container, '
            + '.jupyter-widgets.widget-inline-hbox, .jupyter-widgets.widget-html').length > 0""",
                             arg=views, timeout=20000)
        empty = pg.evaluate("""() => [...document.querySelectorAll(
                'script[type="application/vnd.jupyter.widget-view+json"]')]
            .filter(s => {
                const host = s.parentElement;
                const w = host && host.querySelector('.jupyter-widgets');
                return !w || w.getBoundingClientRect().height < 5 || !w.textContent.trim();
            }).length""")
        if empty:
            problems.append(f"{empty} of {views} widget areas are empty")

    # What a reader sees, at 1280 px and (below) at 390 px: no code or output line wider than its
    # box, nothing in the article wider than the column unless it has its own scroll box, no
    # install path anywhere; a screenshot of the page's top for a human to look at.
    shots = HTML.parent / "screenshots"
    shots.mkdir(exist_ok=True)
    name = page.replace("/", "_")

    def look(width):
        pg.evaluate("window.scrollTo(0, 0)")
        problems.extend(f"{width} px: {p}" for p in pg.evaluate(LAYOUT_PROBLEMS))
        pg.screenshot(path=str(shots / f"{name}_{width}.png"))

    look(1280)
    for i, fig in enumerate(pg.locator("div.cell_output img").all()):
        fig.scroll_into_view_if_needed()
        fig.screenshot(path=str(shots / f"{name}_figure{i + 1:02d}.png"))
    html = pg.content()
    for needle in ("site-packages", "/work/", "/root/", ".venv"):
        if needle in html:
            problems.append(f"the page contains a machine path ({needle!r})")

    # Display math fits the desktop column (long equations are split), and wherever one is wider
    # than its box it scrolls with a visible cue (book_static/book.css), never cut silently.
    if n_math:
        wide = pg.evaluate(WIDE_EQUATIONS)
        problems += [f"equation wider than the column at 1280 px: {w['text']!r} "
                     f"({w['sw']} > {w['cw']} px)" for w in wide]
        pg.set_viewport_size({"width": 390, "height": 844})
        pg.wait_for_timeout(300)
        uncued = [w for w in pg.evaluate(WIDE_EQUATIONS)
                  if w["overflow"] not in ("auto", "scroll") or "local" not in w["attachment"]]
        problems += [f"equation cut without a scroll cue at 390 px: {w['text']!r}"
                     for w in uncued]
    pg.set_viewport_size({"width": 390, "height": 844})
    pg.wait_for_timeout(300)
    look(390)

    context.close()
    assert not problems, f"{page}:\n  " + "\n  ".join(problems)


SIDEBAR_STATE = """() => {
    const side = document.querySelector('#pst-primary-sidebar');
    const dialog = document.querySelector('#pst-primary-sidebar-modal');
    const shown = el => {   // on the page, visible, not collapsed (a phone keeps it off-canvas)
        if (!el) return false;
        const r = el.getBoundingClientRect(), cs = getComputedStyle(el);
        return r.width > 50 && r.right > 0 && cs.display !== 'none' && cs.visibility !== 'hidden'
            && !el.classList.contains('pst-sidebar-hidden');
    };
    return {inline: shown(side), dialog: !!dialog && dialog.open,
            links: dialog && dialog.open ? dialog.querySelectorAll('a.reference').length : 0};
}"""


@pytest.mark.parametrize("width, height", [(1280, 900), (390, 844)])
def test_the_sidebar_button_opens_and_closes_the_chapter_list(server, browser, width, height):
    """The visible "Toggle primary sidebar" button works at desktop and phone widths: on a wide
    screen it hides the chapter list and brings it back; on a phone (where the list is hidden)
    it opens the list as a dialog with the chapters' links, and Escape closes it."""
    context = browser.new_context(viewport={"width": width, "height": height})
    pg = context.new_page()
    pg.route("**/*", lambda r: r.continue_() if r.request.url.startswith(server) else r.abort())
    pg.goto(f"{server}/chapters/02_attention.html", wait_until="networkidle")
    buttons = pg.locator(".primary-toggle")
    visible = [i for i in range(buttons.count()) if buttons.nth(i).is_visible()]
    assert visible, f"no visible sidebar button at {width}px"
    button = buttons.nth(visible[0])
    before = pg.evaluate(SIDEBAR_STATE)
    button.click()
    pg.wait_for_timeout(300)
    after = pg.evaluate(SIDEBAR_STATE)
    if width >= 992:
        assert before["inline"] and not after["inline"], (before, after)
        button.click()
        pg.wait_for_timeout(300)
        assert pg.evaluate(SIDEBAR_STATE)["inline"]
    else:
        assert not before["inline"] and not before["dialog"], before
        assert after["dialog"] and after["links"] >= 10, after     # every chapter listed
        shots = HTML.parent / "screenshots"
        shots.mkdir(exist_ok=True)
        pg.screenshot(path=str(shots / "sidebar_open_390.png"))       # for the human reader
        pg.keyboard.press("Escape")
        pg.wait_for_timeout(300)
        assert not pg.evaluate(SIDEBAR_STATE)["dialog"]
    context.close()
