"""MkDocs hook: render LaTeX to MathML at build time, so formulas show without internet.

``pymdownx.arithmatex`` (``generic: true``) wraps inline math (``\\(...\\)`` or ``$...$``
in the source) as ``<span class="arithmatex">\\(...\\)</span>`` and display math as
``<div class="arithmatex">\\[...\\]</div>``; notebook markdown cells go through the same
pipeline (mkdocs-jupyter's ``markdown_cell_processor: mkdocs``). This hook replaces each
with the MathML that ``latex2mathml`` produces. Browsers render MathML natively (Chromium
>= 109, Firefox, Safari): no JavaScript renderer, no network. It also removes the MathJax
loader that mkdocs-jupyter adds to every page (it would fetch MathJax from a CDN).

A formula that does not convert, or that contains a command ``latex2mathml`` does not know
(it would show as raw ``\\command``), is logged as a warning, which fails ``--strict``.
"""

from __future__ import annotations

import html
import logging
import re

from latex2mathml.converter import convert

log = logging.getLogger("mkdocs.hooks.math")

_ARITHMATEX = re.compile(
    r'<(?P<tag>span|div) class="arithmatex">\s*'
    r"(?:\\\((?P<inline>.*?)\\\)|\\\[(?P<block>.*?)\\\])\s*</(?P=tag)>",
    re.DOTALL,
)
_MATHJAX_LOADER = re.compile(r"<script data-mkdocs-jupyter-mathjax=.*?</script>\s*", re.DOTALL)


def _mathml(latex: str, display: bool, where: str) -> str:
    tex = html.unescape(latex).strip()
    try:
        out = convert(tex, display="block" if display else "inline")
    except Exception as err:  # latex2mathml raises several exception types
        log.warning("math: cannot convert %r on %s: %s", tex, where, err)
        return html.escape(tex)
    if "\\" in out:  # an unknown command is passed through verbatim
        log.warning("math: unknown LaTeX command in %r on %s", tex, where)
    return out


def on_page_content(html_text: str, page, config, files) -> str:
    where = page.file.src_uri

    def repl(m: re.Match) -> str:
        display = m.group("block") is not None
        return _mathml(m.group("block") if display else m.group("inline"), display, where)

    return _ARITHMATEX.sub(repl, html_text)


def on_post_page(output: str, page, config) -> str:
    return _MATHJAX_LOADER.sub("", output)
