"""A local Sphinx extension for the book (listed in _config.yml under sphinx.local_extensions).

- ``book_static/mathjax3-widgets.js`` on every page, deferred and after MathJax 3, so that
  ipywidgets' HTML manager (which calls MathJax 2's ``MathJax.Hub.Queue``) works with MathJax 3;
- ``book_static/sidebar-toggle-fix.js``: the themes attach the sidebar handler to the first
  ``.primary-toggle`` button only, and a Jupyter Book page has two (see the file);
- ``book_static/book.css``: a scroll cue on display equations wider than the column;
- each page's scripts listed once: sphinx-thebe's inline configuration is added twice, and a
  second ``const THEBE_JS_URL`` is a JavaScript error on every page.
"""


def _scripts_once(app, pagename, templatename, context, doctree):
    """Drop repeated entries (same file, same attributes, same inline body) from the page."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for js in scripts:
        attributes = getattr(js, "attributes", {}) or {}
        # an inline script has filename None or '' depending on who added it
        key = (getattr(js, "filename", str(js)) or "",
               tuple(sorted((k, str(v)) for k, v in attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(js)
    scripts[:] = unique


def setup(app):
    # sphinx.ext.mathjax adds MathJax with the default priority 500 and `defer`; deferred
    # scripts run in document order, so priority 510 runs this one after MathJax has loaded.
    app.add_js_file("mathjax3-widgets.js", loading_method="defer", priority=510)
    app.add_js_file("sidebar-toggle-fix.js", loading_method="defer")
    app.add_css_file("book.css")
    app.connect("html-page-context", _scripts_once, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
