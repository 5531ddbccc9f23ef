"""Griffe extension for the API pages: Sphinx roles in docstrings become cross-references.

ginv's docstrings use Sphinx roles (:func:`measure`, :class:`~ginv.models.Ensemble`), which
mkdocstrings would print as raw text. Each role becomes an autorefs link to the named object,
resolved in the docstring's scope as Python would (imports included), and marked optional:
a target that the site does not document is shown as code, without a broken link.
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(func|class|data|mod|meth|attr|exc|obj|const):`(~?)([^`]+)`")


def _identifier(obj: griffe.Object, target: str) -> str:
    if target.startswith("ginv"):
        return target
    head, _, rest = target.partition(".")
    for scope in (obj, obj.parent, obj.module):
        if scope is None:
            continue
        try:
            found = scope.resolve(head)
        except Exception:  # not in this scope: try the next
            continue
        return f"{found}.{rest}" if rest else found
    return f"{obj.module.path}.{target}"


def convert(obj: griffe.Object, text: str) -> str:
    def link(m: re.Match[str]) -> str:
        target = m.group(3).strip().removesuffix("()")
        title = target.rsplit(".", 1)[-1] if m.group(2) else target
        ident = html.escape(_identifier(obj, target), quote=True)
        return f'<autoref identifier="{ident}" optional><code>{html.escape(title)}</code></autoref>'

    return ROLE.sub(link, text)


class SphinxRoles(griffe.Extension):
    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None and ":" in obj.docstring.value:
            obj.docstring.value = convert(obj, obj.docstring.value)
