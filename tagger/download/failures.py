"""What went wrong with a URL, in one line: yt-dlp's failures explained with what to try."""

from __future__ import annotations

import re

from tagger.errors import DownloadError

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
COMMAND_LINE_FLAG = re.compile(r"(?<![\w-])--[a-z][\w-]*")
OWN_FLAGS = frozenset({"--cookies", "--cookies-from-browser"})  # yt-dlp's that genre-tag has
DEFAULT_HINT = "check the URL opens in a browser, or download the audio and pass the file"
SIGN_IN_HINT = ("pass --cookies-from-browser NAME of a browser signed in to an account that "
                "may watch it, or --cookies FILE")

# (pattern in yt-dlp's message, what went wrong, what to try), the first match wins
FAILURES: tuple[tuple[re.Pattern[str], str, str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), what, hint) for pattern, what, hint in (
        (r"failed to load cookies", "could not load the browser's cookies",
         "close the browser and check the name and profile given to --cookies-from-browser, "
         "or pass --cookies FILE"),
        (r"private video|video is private", "is a private video", SIGN_IN_HINT),
        (r"members[- ]only|join this channel", "is for channel members only",
         "pass --cookies-from-browser NAME of a browser signed in to a member's account"),
        (r"confirm your age|age[- ]restricted|inappropriate for some users",
         "is age-restricted", "pass --cookies-from-browser NAME of a browser signed in to an "
         "adult's account, or --cookies FILE"),
        (r"HTTP Error 429|too many requests|rate[- ]limit|try again later",
         "the site is limiting the rate of requests (HTTP 429 Too Many Requests)",
         "wait an hour before trying again, or pass --cookies-from-browser NAME"),
        (r"not a bot|captcha", "the site asks to prove that this is not a bot",
         "pass --cookies-from-browser NAME of a browser signed in to the site, or wait and "
         "try again"),
        (r"in your country|from your location|geo[- ]?restrict",
         "is blocked in your country (geo-restricted)",
         "it can only be fetched from a country where it is available"),
        (r"live event will begin|premieres? in|will begin in",
         "is a live stream or premiere that has not started yet",
         "try again once it has been broadcast"),
        (r"HTTP Error (?:404|410)", "was not found (HTTP 404): removed, or a wrong URL",
         "check the URL"),
        (r"removed|no longer available|been terminated|video unavailable|does not exist",
         "has been removed or does not exist", "check the URL"),
        (r"HTTP Error 403", "the server refused access (HTTP 403)",
         "if it plays in a browser, pass --cookies-from-browser NAME, or update yt-dlp "
         "(pip install -U yt-dlp)"),
        (r"file:// URLs", "is a file on this computer, not a web page",
         "pass its path without --url: genre-tag PATH"),
        (r"--video-password|password[- ]protected", "is protected by a password",
         "genre-tag cannot pass a video password: download the audio and pass the file"),
        (r"bytes read, \d+ more expected|content too short|incomplete ?read",
         "the server closed the connection before sending the whole file",
         "try again later; if it keeps failing, the server sends less than it announces"),
        (r"certificate verify failed|CERTIFICATE_VERIFY_FAILED",
         "the site's HTTPS certificate could not be verified",
         "check the URL and the computer's clock; a network that inspects HTTPS needs its "
         "certificate installed"),
        (r"timed out", "the server stopped answering (timed out)",
         "check your connection and try again later"),
        (r"connection refused|name or service not known|failed to resolve|nodename nor servname"
         r"|network is unreachable|getaddrinfo", "cannot reach the server",
         "check the address and your connection"),
        (r"unsupported url", "no audio or video found on this page (unsupported URL)",
         DEFAULT_HINT),
    )
)


def clean_message(message: str) -> str:
    """yt-dlp's message on one line, without its prefixes, causes and bug-report advice.

    Sentences that advise a yt-dlp command-line flag genre-tag does not have are
    dropped too: the user could not follow them.
    """
    lines = ANSI_ESCAPE.sub("", message).replace("\r", "").strip().splitlines()
    message = lines[0] if lines else ""
    message = re.sub(r"^(?:ERROR|WARNING):\s*(?:\[[\w:.-]+\]\s*(?:[^\s:]+:\s+)?)?", "", message)
    message = re.sub(r"\s*(?:\(caused by .*|;\s*please report this issue.*)$", "", message)
    sentences = re.split(r"(?<=[.!?])\s+", message)
    return " ".join(sentence for sentence in sentences
                    if OWN_FLAGS.issuperset(COMMAND_LINE_FLAG.findall(sentence)))


def explain_failure(message: str, source: str) -> DownloadError:
    """One clear line for a yt-dlp failure: the cause and what to try."""
    for pattern, what, hint in FAILURES:
        if pattern.search(message):
            return DownloadError(what, source, hint)
    reason = clean_message(message) or "yt-dlp gave no reason"
    return DownloadError(f"download failed: {reason}", source, DEFAULT_HINT)
