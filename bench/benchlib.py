"""What the Python benches share: reading `millions load`'s JSON summary for errors of any kind,
defensively (its fields grow: errors by kind, by call)."""
import re

ERROR_KEY = re.compile(r"^(errors?|failures?|failed)(_by_[a-z_]+|_total|_count)?$")


def count_errors(value):
    if isinstance(value, bool):
        return 0
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, dict):
        return sum(count_errors(v) for v in value.values())
    if isinstance(value, list):
        return sum(count_errors(v) for v in value)
    return 0
