"""Sphinx extension: include each inline <script> only once per page.

sphinx-thebe 0.3.1 registers its inline configuration script (``const THEBE_JS_URL = ...``)
every time Sphinx reads documents, and with Sphinx 7 the page then carries it twice. The
second copy throws "Identifier 'THEBE_JS_URL' has already been declared" in the browser's
console on every page (sphinx-togglebutton's one-line script is doubled the same way).
Dropping exact duplicates of inline scripts removes the error and changes nothing else.
"""


def _drop_duplicate_inline_scripts(app, pagename, templatename, context, doctree):
    seen, unique = set(), []
    for script in context.get("script_files", []):
        if not script.filename:  # an inline script: its body is in script.attributes
            key = tuple(sorted(script.attributes.items()))  # the copies differ in priority only
            if key in seen:
                continue
            seen.add(key)
        unique.append(script)
    context["script_files"] = unique


def setup(app):
    app.connect("html-page-context", _drop_duplicate_inline_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
