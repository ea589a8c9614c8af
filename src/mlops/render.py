"""The Jinja2 kit every report uses: one environment over ``mlops/templates/``, filters, the comment limit.

Input: a template name and its context. Output: rendered Markdown or HTML text; Markdown meant
for a GitHub comment is cut to :data:`MAX_COMMENT_CHARS` with a note (:func:`fit_comment`).
"""

from __future__ import annotations

import math

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape


# GitHub rejects comments over 65,536 characters; keep a margin for CML's watermark.
MAX_COMMENT_CHARS = 65_000


def fmt(value, digits: int = 4) -> str:
    """A number for a table: fixed digits, 'n/a' for missing or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def pvalue(value) -> str:
    """A p-value for a table: 4 decimals, scientific below 0.0001 (so 1e-30 is not shown as 0), 'n/a' if missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.1e}" if 0 < value < 1e-4 else f"{value:.4f}"


def signed(value, digits: int = 4) -> str:
    """A change with its sign (+0.0123), 'n/a' for missing or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:+.{digits}f}"


def environment() -> Environment:
    """The Jinja2 environment for every template in the package (Markdown and HTML)."""
    env = Environment(
        loader=PackageLoader("mlops", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["fmt"] = fmt
    env.filters["signed"] = signed
    env.filters["pvalue"] = pvalue
    return env


def fit_comment(markdown: str, limit: int = MAX_COMMENT_CHARS) -> str:
    """Cut a Markdown report to GitHub's comment limit, saying so at the end."""
    if len(markdown) <= limit:
        return markdown
    note = "\n\n> Report truncated to fit a GitHub comment; the full report is in the workflow artifact.\n"
    return markdown[: limit - len(note)].rsplit("\n", 1)[0] + note


def render(template: str, **context) -> str:
    """One template rendered with ``context``."""
    return environment().get_template(template).render(**context)
