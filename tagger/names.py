"""File names and titles as they are shown and written, whatever bytes or characters they hold.

A name that is not valid UTF-8 reaches Python with each undecodable byte as a
lone surrogate (U+DC80-U+DCFF, PEP 383). On screen such a byte is shown as
``\\xNN`` and control characters are escaped, so a name stays one line and
cannot recolour or move the terminal; in JSON and CSV it is U+FFFD, with the
exact bytes beside it in JSON (``source_bytes``).
"""

from __future__ import annotations

import base64
import unicodedata

ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
UNPRINTABLE_CATEGORIES = ("Cc", "Cs", "Zl", "Zp")  # controls, surrogates, line/paragraph breaks
MAX_FILE_NAME_BYTES = 200  # below every common file system's 255, leaving room for " (N).png"


def is_escaped_byte(character: str) -> bool:
    """Whether ``character`` stands for an undecodable byte of a file name."""
    return 0xDC80 <= ord(character) <= 0xDCFF


def printable(text: str) -> str:
    """``text`` on one line, literally: undecodable bytes as ``\\xNN``, line breaks and other
    control characters escaped (``\\n``, ``\\x1b``, ``\\u2028``)."""
    if text.isprintable():
        return text
    shown = []
    for character in text:
        if is_escaped_byte(character):
            shown.append(f"\\x{ord(character) - 0xDC00:02x}")
        elif character in ESCAPES:
            shown.append(ESCAPES[character])
        elif unicodedata.category(character) in UNPRINTABLE_CATEGORIES:
            code = ord(character)
            shown.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            shown.append(character)
    return "".join(shown)


def unicode_text(text: str) -> str:
    """``text`` as valid Unicode for JSON and CSV: every lone surrogate becomes U+FFFD."""
    return "".join("\ufffd" if unicodedata.category(c) == "Cs" else c for c in text)


def name_bytes(text: str) -> str | None:
    """The exact bytes of a name that is not valid UTF-8, base64-encoded; None for a name
    that is (its text says it all)."""
    if unicode_text(text) == text:
        return None
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that stands for no byte
        raw = text.encode("utf-8", "surrogatepass")
    return base64.b64encode(raw).decode("ascii")


def file_name_for(title: str, suffix: str, number: int = 1) -> str:
    """A file name made from ``title`` that any file system takes: letters, digits and
    ``-_. `` kept, anything else ``_``, cut to MAX_FILE_NAME_BYTES; ``number`` > 1 tells
    apart songs of the same title (``song (2).png``)."""
    safe = "".join(c if c.isalnum() or c in "-_. " else "_" for c in title).strip(" .")
    cut = safe.encode("utf-8")[:MAX_FILE_NAME_BYTES].decode("utf-8", "ignore")
    stem = cut.rstrip(" .") or "song"
    return f"{stem}{suffix}" if number == 1 else f"{stem} ({number}){suffix}"
