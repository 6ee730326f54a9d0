"""ExcludedPaths: the one path-exclusion model every adapter builds (exact, prefixes, patterns)."""

from __future__ import annotations

import re

import pytest

from clerk_guard import ConfigurationError
from clerk_guard._paths import ExcludedPaths


def test_exact_paths_match_only_themselves():
    """An exact path covers itself, not a trailing slash or what is below it."""
    excluded = ExcludedPaths(["/health"])
    assert "/health" in excluded
    assert "/health/" not in excluded and "/health/x" not in excluded


@pytest.mark.parametrize("prefix", ["/static", "/static/"])
def test_prefixes_match_whole_segments(prefix):
    """A prefix covers itself and what is below it, never a longer segment."""
    excluded = ExcludedPaths(prefixes=[prefix])
    assert "/static" in excluded and "/static/app.js" in excluded
    assert "/staticky" not in excluded


def test_root_prefix_covers_everything():
    """The prefix "/" covers every path."""
    assert "/anything/at/all" in ExcludedPaths(prefixes="/")


def test_patterns_match_the_whole_path():
    """A pattern must match the whole path (re.fullmatch), strings and compiled alike."""
    excluded = ExcludedPaths(patterns=[r"/health", re.compile(r"/static/.*")])
    assert "/health" in excluded and "/static/app.js" in excluded
    assert "/health\n" not in excluded and "/health/x" not in excluded
    assert "/staticky" not in excluded
    assert "/x" in ExcludedPaths(patterns=r"/x")  # one string is one pattern


def test_the_three_kinds_combine():
    """A path covered by any of the three is excluded."""
    excluded = ExcludedPaths(["/a"], ["/b"], [r"/c/\d+"])
    assert all(path in excluded for path in ("/a", "/b/x", "/c/12"))
    assert "/d" not in excluded and "/c/x" not in excluded


def test_empty_model_is_false():
    """Nothing configured: the model is false, so hot paths can skip the lookup."""
    assert not ExcludedPaths()
    assert ExcludedPaths(["/a"]) and ExcludedPaths(prefixes=["/a"]) and ExcludedPaths(patterns="a")
    assert "/" not in ExcludedPaths()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"exact": ["health"]}, "exclude holds paths starting with '/'; got 'health'."),
        ({"prefixes": [None]}, "exclude_prefixes holds paths starting with '/'; got None."),
        ({"patterns": ["(x"]}, "patterns holds '(x', which is not a regular expression"),
        (
            {"patterns": ["(x"], "names": ("a", "b", "EXEMPT")},
            "EXEMPT holds '(x', which is not a regular expression",
        ),
    ],
)
def test_bad_entries_name_the_setting(options, message):
    """A bad entry fails at construction, named as the user wrote the setting."""
    with pytest.raises(ConfigurationError) as info:
        ExcludedPaths(**options)
    assert str(info.value).startswith(message)
