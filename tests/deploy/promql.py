"""Which metric names a PromQL expression reads, and which ones /metrics exposes.

Small on purpose: enough for the expressions in deploy/ (selectors, functions,
aggregations with by/without, vector matching, offsets, Grafana's $variables).
"""

from __future__ import annotations

import re

# Series Prometheus makes itself for every target: not in the app's /metrics.
PROMETHEUS_SERIES = frozenset({"up"})

_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
     "group_left", "group_right", "inf", "nan", "atan2"}
)  # fmt: skip
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_OFFSET = re.compile(r"\boffset\s+-?\w+")
_VARIABLE = re.compile(r"\$\{?\w+\}?")
_NAME = re.compile(r"(?<![\w.])[A-Za-z_:][\w:]*")


def metric_names(expr: str) -> set[str]:
    """Metric names selected by ``expr`` (function names and keywords excluded)."""
    s = _VARIABLE.sub("", expr)
    s = _STRING.sub('""', s)
    s = _MATCHERS.sub("", s)
    s = _RANGE.sub("", s)
    s = _GROUPING.sub("", s)
    s = _OFFSET.sub("", s)
    names = set()
    for m in _NAME.finditer(s):
        word = m.group()
        if word.lower() in _KEYWORDS or s[m.end() :].lstrip().startswith("("):
            continue
        names.add(word)
    return names


def exposed_names(exposition: str) -> set[str]:
    """Every sample name the text exposition can carry, from its ``# TYPE`` lines.

    A labelled counter with no sample yet (no risk block so far) still has its
    TYPE line, and a histogram ``h`` is read as ``h_bucket``, ``h_sum`` and ``h_count``.
    """
    names: set[str] = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            if kind in ("histogram", "gaugehistogram"):
                names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
            elif kind == "summary":
                names |= {name, f"{name}_sum", f"{name}_count"}
            else:
                names.add(name)
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names
