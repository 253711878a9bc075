"""A local Sphinx extension for the book (listed in _config.yml under sphinx.local_extensions).

It adds ``book_static/mathjax3-widgets.js`` to every page, deferred and after MathJax 3, so that
ipywidgets' HTML manager (which calls MathJax 2's ``MathJax.Hub.Queue``) works with MathJax 3.
"""


def setup(app):
    # sphinx.ext.mathjax adds MathJax with the default priority 500 and `defer`; deferred
    # scripts run in document order, so priority 510 runs this one after MathJax has loaded.
    app.add_js_file("mathjax3-widgets.js", loading_method="defer", priority=510)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
