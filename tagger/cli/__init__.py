"""The ``genre-tag`` command: a thin click layer over the library, one module per command
group (``tag``, ``batch``, ``train``, ``cache``, ``info``) on ``common``.

Heavy imports (torch, PyAV, matplotlib) happen inside the commands, so
``genre-tag --help`` and ``--version`` answer at once.
"""

from __future__ import annotations

# First, before the slower imports: imported in the genre-tag program, it makes a Ctrl-C
# from here on end the program with one line, not a traceback.
from tagger.cli import interrupts  # noqa: F401

# isort: split
import click

from tagger import __version__
from tagger.cli.batch import batch_command
from tagger.cli.cache import cache_group
from tagger.cli.info import info_command
from tagger.cli.tag import emotion_command, tag_command
from tagger.cli.train import calibrate_command, evaluate_command, retrain_command

DEFAULT_COMMAND = "tag"


class DefaultCommandGroup(click.Group):
    """Runs ``tag`` when the first argument is not a sub-command: ``genre-tag song.mp3``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "--version"):
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)


@click.group(cls=DefaultCommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="genre-tag",
                      message="%(prog)s, version %(version)s\n"
                              "(the backend, device and models in use: genre-tag info)")
def main() -> None:
    """Per-second music genre timelines.

    \b
    genre-tag song.mp3                 timeline in the terminal + song summary
    genre-tag song.mp3 --png song.png  the same as a picture
    genre-tag ~/Music --json tags.jsonl
    genre-tag ~/Music --write-tags     write the genres into the files (--dry-run first)
    genre-tag --url URL                any site yt-dlp supports, playlists too
    genre-tag emotion song.mp3         valence, energy, danceability over time
    genre-tag batch DIR --out RESULTS  many songs into Parquet tables, resumable (Ray Data)
    genre-tag retrain --data DIR       train a model on your own folders
    genre-tag cache info|clear         the download and results caches
    genre-tag info                     the backend, device and models in use

    Run 'genre-tag tag --help' for every tagging option.
    """


for command in (tag_command, emotion_command, batch_command, retrain_command, evaluate_command,
                calibrate_command, cache_group, info_command):
    main.add_command(command)

__all__ = ["main"]
