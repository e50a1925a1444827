"""MkDocs hook: show reStructuredText markup of docstrings as the reader expects.

Our docstrings are NumPy style with Sphinx cross-reference roles (``:func:`name```,
``:class:`~pkg.Name```) and double-backtick literals. mkdocstrings renders neither: a role
shows as ``:func:`` followed by the name, and in a ``Returns`` entry without a name the
whole line is taken for a type and printed verbatim, backticks included. This hook turns
each role into inline code (``~`` keeps the last component, as Sphinx does) and each
double-backtick literal inside such verbatim code into inline code. It also strips inline
LaTeX from table-of-contents titles (the theme prints them as text; the page body gets
MathML from ``math.py``).
"""

from __future__ import annotations

import re

_ROLE = r":(?:py:)?(?:func|class|meth|attr|mod|obj|exc|data|const):"
_ROLE_IN_CODE = re.compile(_ROLE + r"<code>(?P<name>[^<]*)</code>")
_ROLE_BACKTICKS = re.compile(_ROLE + r"`(?P<name>[^`]+)`")
_VERBATIM = re.compile(r"<code>(?P<body>(?:(?!</code>).)*``(?:(?!</code>).)*)</code>", re.DOTALL)
_LITERAL = re.compile(r"``(?P<body>.+?)``", re.DOTALL)
_TOC_MATH = re.compile(r"\\\((?P<tex>.*?)\\\)")


def _name(m: re.Match) -> str:
    name = m.group("name").strip()
    if name.startswith("~"):
        name = name[1:].rsplit(".", 1)[-1]
    return f"<code>{name}</code>"


def _unverbatim(m: re.Match) -> str:
    body = _LITERAL.sub(lambda lit: f"<code>{lit.group('body')}</code>", m.group("body"))
    return _ROLE_BACKTICKS.sub(_name, body)


def _plain_tex(tex: str) -> str:
    return re.sub(r"\\([A-Za-z]+)", r"\1", tex).replace("{", "").replace("}", "").strip()


def _fix_toc(items) -> None:
    for item in items:
        item.title = _TOC_MATH.sub(lambda m: _plain_tex(m.group("tex")), item.title)
        _fix_toc(item.children)


def on_page_content(html_text: str, page, config, files) -> str:
    _fix_toc(page.toc)
    html_text = _VERBATIM.sub(_unverbatim, html_text)
    html_text = _ROLE_IN_CODE.sub(_name, html_text)
    return _ROLE_BACKTICKS.sub(_name, html_text)
