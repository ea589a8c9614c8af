"""Report rendering: fits a GitHub comment; numbers are formatted for reading."""

from __future__ import annotations

import math

from mlops.render import MAX_COMMENT_CHARS, fit_comment, fmt


def test_long_report_is_cut_to_comment_limit():
    """A report over GitHub's limit is cut at a line break and says where the rest is."""
    text = "| row |\n" * 20_000
    out = fit_comment(text)
    assert len(out) <= MAX_COMMENT_CHARS
    assert out.endswith("full report is in the workflow artifact.\n")


def test_short_report_unchanged():
    """A report within the limit is left as it is."""
    assert fit_comment("hello\n") == "hello\n"


def test_fmt():
    """Floats get fixed digits, NaN and None read 'n/a'."""
    assert fmt(0.123456) == "0.1235"
    assert fmt(math.nan) == "n/a" and fmt(None) == "n/a"
    assert fmt(3) == "3"
