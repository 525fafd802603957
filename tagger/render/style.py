"""One colour and one key letter per genre, shared by the terminal view and the PNG."""

from __future__ import annotations

# matplotlib's tab10, then tab20's lighter shades for models with more classes; their
# greys are replaced by tab20b's indigo and plum, so that grey means uncertain only.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#393b79", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5",
    "#c49c94", "#f7b6d2", "#7b4173", "#dbdb8d", "#9edae5",
)

# Seconds with no clear genre: a neutral grey, the one grey of the views.
UNCERTAIN_COLOUR = "#d0d0d0"


def genre_colours(classes: list[str]) -> dict[str, str]:
    return {genre: PALETTE[i % len(PALETTE)] for i, genre in enumerate(classes)}


def genre_keys(classes: list[str]) -> dict[str, str]:
    """A distinct single character per genre: its first letter not taken yet."""
    keys: dict[str, str] = {}
    used: set[str] = set()
    spare = iter("123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    for genre in classes:
        key = next((c for c in genre.lower() if c.isalnum() and c not in used), None)
        while key is None or key in used:
            key = next(spare)
        keys[genre] = key
        used.add(key)
    return keys
