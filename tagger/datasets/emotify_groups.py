"""Emotify's estimated album and artist groups (placeholder until estimated)."""

ESTIMATED_GROUPS: dict[str, str] = {}
GROUPED_RATERS: dict[str, int] = {}
