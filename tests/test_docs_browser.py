"""The built docs site, opened page by page in headless Chromium (offline, on loopback).

Checks what a reader sees: no raw LaTeX (``\\(``, ``\\[``) in the text, formulas rendered as
MathML with a size, every image loaded, every notebook page with its figures, every link
inside the site resolving (page and anchor), no request leaving the machine, and no private
names (``_Name``) in the rendered API reference.

The site comes from ``$DOCS_SITE_DIR`` when set (``make test`` builds it first), else it is
built here with ``mkdocs build --strict``. Chromium is ``$CHROMIUM`` or Debian's
``/usr/bin/chromium`` (``make test`` installs it with apt-get where it can); without it the
test skips and says how to get it. Chromium is driven over the DevTools protocol on a pipe
(``--remote-debugging-pipe``), so no extra Python package is needed.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-dev-shm-usage", "--remote-debugging-pipe", "about:blank",
]
pytestmark = [pytest.mark.xdist_group("docs_browser")]


def _chromium() -> str | None:
    for cand in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                 shutil.which("chromium-browser"), shutil.which("google-chrome")):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


class Browser:
    """Minimal DevTools-protocol client over Chromium's pipe (fd 3 in, fd 4 out)."""

    def __init__(self, exe: str, profile: str):
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def fds():  # runs in the child: its fd 3 reads our commands, fd 4 writes replies
            os.dup2(to_child_r, 3)
            os.dup2(from_child_w, 4)

        self.proc = subprocess.Popen(
            [exe, f"--user-data-dir={profile}", *CHROMIUM_FLAGS], preexec_fn=fds,
            close_fds=False,  # keep the dup2'ed fds 3 and 4 (ours are non-inheritable)
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_child_r), os.close(from_child_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []

    def _read(self, timeout: float) -> dict:
        import select

        while b"\0" not in self._buf:
            ready, _, _ = select.select([self._from_child], [], [], timeout)
            if not ready:
                raise TimeoutError(f"no reply from Chromium within {timeout} s")
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 60.0) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._read(timeout)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_event(self, method: str, session: str, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for i, ev in enumerate(self.events):
                if ev.get("method") == method and ev.get("sessionId") == session:
                    return self.events.pop(i)
            self.events.append(self._read(max(0.1, deadline - time.monotonic())))
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {method} within {timeout} s")

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self._to_child), os.close(self._from_child)


# What the page shows, measured in the page after load (and after images settle).
PAGE_PROBE = r"""
(async () => {
  await Promise.all(Array.from(document.images).map(img => img.complete ? null :
      new Promise(r => { img.onload = img.onerror = r; })));
  const main = document.querySelector('article') || document.body;
  const clone = main.cloneNode(true);
  clone.querySelectorAll('pre, code, script, style, .highlight').forEach(e => e.remove());
  const text = clone.innerText;
  // raw LaTeX anywhere a reader looks: the article, the navigation and the table of contents
  const whole = document.body.cloneNode(true);
  whole.querySelectorAll('pre, code, script, style, .highlight').forEach(e => e.remove());
  const wholeText = whole.innerText;
  const raw = [];
  for (const pat of ['\\(', '\\[', '\\begin{', '$$']) {
    const i = wholeText.indexOf(pat);
    if (i >= 0) raw.push(wholeText.slice(Math.max(0, i - 30), i + 50));
  }
  // docstring markup that mkdocstrings does not render (Sphinx roles, ``literals``)
  const markup = [];
  const shown = main.innerText;
  for (const re of [/:(?:py:)?(?:func|class|meth|attr|mod|obj|exc|data|const):/g, /``/g]) {
    for (const m of shown.matchAll(re)) {
      markup.push(shown.slice(Math.max(0, m.index - 30), m.index + 40));
      if (markup.length > 5) break;
    }
  }
  const maths = Array.from(document.querySelectorAll('article math'));
  return {
    raw_latex: raw,
    docstring_markup: markup,
    math: maths.length,
    flat_math: maths.filter(m => m.getBoundingClientRect().width < 1).length,
    broken_images: Array.from(document.images)
        .filter(img => !(img.complete && img.naturalWidth > 0)).map(img => img.src),
    notebook: !!document.querySelector('.jupyter-wrapper'),
    images: document.querySelectorAll('article img').length,
    notebook_figures: document.querySelectorAll(
        '.jupyter-wrapper .jp-OutputArea-output img').length,
    links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
    text: text,
    shared_descriptions: Array.from(document.querySelectorAll('ul')).flatMap(ul => {
      const items = Array.from(ul.children).filter(li => li.matches('.doc-section-item'));
      const seen = new Map();
      for (const li of items) {
        const name = li.querySelector('b, code')?.innerText;
        const desc = li.querySelector('.doc-md-description')?.innerText.trim();
        if (!desc) continue;
        if (!seen.has(desc)) seen.set(desc, []);
        seen.get(desc).push(name);
      }
      return Array.from(seen.values()).filter(names => names.length > 1);
    }),
    full_text: main.innerText,
  };
})()
"""


def _serve(site: Path):
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    given = os.environ.get("DOCS_SITE_DIR")
    if given:
        path = Path(given)
        assert (path / "index.html").is_file(), f"DOCS_SITE_DIR={given} holds no built site"
        return path
    path = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    mkdocs = Path(sys.executable).with_name("mkdocs")
    out = subprocess.run([str(mkdocs), "build", "--strict", "--site-dir", str(path)],
                         cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0, f"mkdocs build --strict failed:\n{out.stderr[-4000:]}"
    return path


@pytest.fixture(scope="module")
def pages(site):
    """Every HTML page of the site as the browser sees it: {relative path: probe result}."""
    exe = _chromium()
    if exe is None:
        pytest.skip("headless Chromium not found (set $CHROMIUM, or install Debian's "
                    "'chromium' package: apt-get install chromium; make test does this "
                    "when it runs as root)")
    server = _serve(site)
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    browser = Browser(exe, profile)
    results, offsite = {}, []
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget",
                               {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Network"):
            browser.send(f"{domain}.enable", session=session)
        html_files = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html")
                            if p.name != "404.html")
        for rel in html_files:
            browser.events.clear()
            browser.send("Page.navigate", {"url": base + rel}, session=session)
            browser.wait_event("Page.loadEventFired", session)
            res = browser.send("Runtime.evaluate", {"expression": PAGE_PROBE,
                                                    "awaitPromise": True,
                                                    "returnByValue": True}, session=session)
            if "exceptionDetails" in res:
                raise RuntimeError(f"probe failed on {rel}: {res['exceptionDetails']}")
            results[rel] = res["result"]["value"]
            for ev in browser.events:
                if ev.get("method") == "Network.requestWillBeSent":
                    url = ev["params"]["request"]["url"]
                    if urllib.parse.urlsplit(url).scheme in ("http", "https") and \
                            not url.startswith(base):
                        offsite.append((rel, url))
    finally:
        browser.close()
        server.shutdown()
        shutil.rmtree(profile, ignore_errors=True)
    return {"base": base, "site": site, "pages": results, "offsite": offsite}


def test_every_page_renders_math(pages):
    raw = {p: r["raw_latex"] for p, r in pages["pages"].items() if r["raw_latex"]}
    assert not raw, f"raw LaTeX visible on pages: {raw}"
    flat = {p: r["flat_math"] for p, r in pages["pages"].items() if r["flat_math"]}
    assert not flat, f"MathML elements with no width (not rendered): {flat}"
    # the pages that carry formulas really show MathML (guards against a silent no-op)
    for page in ("index.html", "score-matching/index.html", "nce/index.html"):
        assert pages["pages"][page]["math"] > 0, page


def test_api_pages_render_docstring_markup(pages):
    """Sphinx roles (:func:`x`) and ``literals`` in docstrings show as code, not verbatim."""
    bad = {p: r["docstring_markup"] for p, r in pages["pages"].items()
           if p.startswith("api/") and r["docstring_markup"]}
    assert not bad, f"docstring markup shown verbatim: {bad}"


def test_no_broken_images_and_notebooks_show_figures(pages):
    broken = {p: r["broken_images"] for p, r in pages["pages"].items() if r["broken_images"]}
    assert not broken, f"images that did not load: {broken}"
    notebooks = {p: r for p, r in pages["pages"].items() if r["notebook"]}
    sources = sorted((ROOT / "docs" / "notebooks").glob("*.ipynb"))
    assert len(notebooks) == len(sources), (sorted(notebooks), sources)
    blank = sorted(p for p, r in notebooks.items() if r["notebook_figures"] == 0)
    assert not blank, f"notebook pages without a figure: {blank}"


def test_site_works_offline(pages):
    assert not pages["offsite"], f"requests leaving the machine: {pages['offsite'][:10]}"


def test_internal_links_resolve(pages):
    base, site = pages["base"], pages["site"]
    ids: dict[str, set[str]] = {}

    def anchors(path: Path) -> set[str]:
        if path not in ids:
            text = path.read_text(encoding="utf-8", errors="replace")
            ids[path] = set(re.findall(r'\bid="([^"]+)"', text)) | set(
                re.findall(r'\bname="([^"]+)"', text))
        return ids[path]

    broken = []
    for page, r in pages["pages"].items():
        for href in r["links"]:
            if not href.startswith(base):
                continue
            parts = urllib.parse.urlsplit(href)
            rel = urllib.parse.unquote(parts.path[len(urllib.parse.urlsplit(base).path):])
            target = site / rel
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                broken.append((page, href))
            elif parts.fragment and target.suffix == ".html" and \
                    urllib.parse.unquote(parts.fragment) not in anchors(target):
                broken.append((page, href))
    assert not broken, f"{len(broken)} broken internal links, e.g. {broken[:10]}"


def _guide_pages() -> list[str]:
    """The pages of the nav's "Guides" section, as built paths (``name/index.html``)."""
    import yaml

    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]
    guides = next(item["Guides"] for item in nav if isinstance(item, dict) and "Guides" in item)
    return [Path(next(iter(g.values()))).with_suffix("").as_posix() + "/index.html"
            for g in guides]


@pytest.mark.parametrize("page", _guide_pages())
def test_every_guide_page_shows_a_figure(pages, page):
    assert pages["pages"][page]["images"] > 0, f"{page} shows no figure"


# API pages whose docstrings still document several parameters on one line, outside the
# notebooks/docs area (issue 12): strict, so each marker must go when its page is fixed.
SHARED_DESCRIPTIONS_LEFT: dict[str, str] = {}


def _api_pages() -> list[str]:
    return sorted(p.stem for p in (ROOT / "docs" / "api").glob("*.md"))


@pytest.mark.parametrize("page", [
    pytest.param(p, marks=pytest.mark.xfail(strict=True, reason=(
        f"still shared: {SHARED_DESCRIPTIONS_LEFT[p]}; remove the entry when fixed")))
    if p in SHARED_DESCRIPTIONS_LEFT else p for p in _api_pages()])
def test_api_reference_parameters_have_their_own_description(pages, page):
    shared = pages["pages"][f"api/{page}/index.html"]["shared_descriptions"]
    assert not shared, ("parameters documented together (one description for several "
                        f"names; give each its own line): {shared}")


def test_api_reference_has_no_private_names(pages):
    api = {p: r for p, r in pages["pages"].items() if p.startswith("api/")}
    assert api, "no API reference pages found"
    # an identifier starting with "_" as its own token (not a subscript such as x'_ij)
    private = re.compile(r"(?<![^\s(\[,=:])_[A-Za-z]\w*")
    found = {p: sorted(set(private.findall(r["full_text"]))) for p, r in api.items()}
    found = {p: names for p, names in found.items() if names}
    assert not found, f"private names shown in the API reference: {found}"
