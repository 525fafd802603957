"""beets plugin: ``beet genretag QUERY`` gives library items genres heard in their audio.

The genres are chosen as ``genre-tag --write-tags`` chooses them
(:func:`tagger.library.genres.choose_genres`) and stored in the item's ``genres`` field,
written to the files by beets itself (``import.write``, ``-w``/``-W``; ``-w`` into a copy
that replaces the file). Flexible
attributes record what genre-tag found, so machine genres can be told from human ones:
``genretag_genres`` (its proposal: an item whose ``genres`` equal it was tagged by
genre-tag), ``genretag_confidence`` (the top genre's mean calibrated probability),
``genretag_model`` and ``genretag_version``; with ``emotion``, also ``genretag_valence``,
``genretag_energy`` and ``genretag_danceability`` (0-1 song values).

Items that already have genres are left alone unless ``force``. The model loads once per
beets run, on the first item that needs it.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from beets import ui
from beets.dbcore import types
from beets.library import FileOperationError, Item, Library
from beets.plugins import BeetsPlugin

from tagger import __version__
from tagger.errors import TaggerError
from tagger.library.genres import (
    DEFAULT_MAX_GENRES,
    DEFAULT_MIN_SHARE,
    GenrePolicy,
    choose_genres,
    tag_names,
)

if TYPE_CHECKING:
    from optparse import Values

    from beets.importer import ImportSession, ImportTask

    from tagger.inference import AudioModel, EmotionTagger, Tagger
    from tagger.results import EmotionResult, SongResult

    ModelT = TypeVar("ModelT", bound=AudioModel)

EMOTION_TARGETS = ("valence", "energy", "danceability")
GENRE_FIELDS = ("genres", "genretag_genres", "genretag_confidence", "genretag_model",
                "genretag_version")
EMOTION_FIELDS = tuple(f"genretag_{target}" for target in EMOTION_TARGETS)


@dataclass(frozen=True)
class Settings:
    """One run's choices, from the ``genretag`` config overlaid with the command line."""

    policy: GenrePolicy
    force: bool
    emotion: bool
    pretend: bool
    write: bool


@dataclass
class Summary:
    """What a run did to its items, for the closing line."""

    items: int = 0
    tagged: int = 0
    left_alone: int = 0
    failed: int = 0
    no_genre: dict[str, int] = field(default_factory=dict)

    def line(self, pretend: bool) -> str:
        parts = [f"{self.tagged} tagged"]
        parts += [f"{count} without a genre ({reason})"
                  for reason, count in sorted(self.no_genre.items())]
        if self.left_alone:
            parts.append(f"{self.left_alone} left alone (already tagged; --force replaces)")
        if self.failed:
            parts.append(f"{self.failed} failed")
        suffix = " (pretend: nothing changed)" if pretend else ""
        return f"genretag: {self.items} items: {', '.join(parts)}{suffix}"


class GenreTagPlugin(BeetsPlugin):
    item_types: dict[str, types.Type] = {  # noqa: RUF012 (beets reads the class attribute)
        "genretag_genres": types.SEMICOLON_SPACE_DSV,
        "genretag_confidence": types.NullFloat(2),
        "genretag_model": types.STRING,
        "genretag_version": types.STRING,
        **{name: types.NullFloat(2) for name in EMOTION_FIELDS},
    }

    def __init__(self) -> None:
        super().__init__()
        self.config.add({
            "auto": False,
            "force": False,
            "min_share": DEFAULT_MIN_SHARE,
            "max_genres": DEFAULT_MAX_GENRES,
            "force_uncertain": False,
            "tag_format": "names",
            "emotion": False,
            "weights": None,
            "device": "auto",
        })
        self._genre_tagger: Tagger | None = None
        self._emotion_tagger: EmotionTagger | None = None
        # The folders whose copies left by killed runs were removed (once per folder).
        self.cleaned_folders: set[Path] = set()
        if self.config["auto"].get(bool):
            self.import_stages = [self.imported]

    def commands(self) -> list[ui.Subcommand]:
        command = ui.Subcommand(
            "genretag", help="give items genres (and emotion) heard in their audio")
        add = command.parser.add_option
        add("-f", "--force", action="store_true", default=None,
            help="replace the genres items already have")
        add("-p", "--pretend", action="store_true", default=False,
            help="show the changes but store and write nothing")
        add("-w", "--write", action="store_true", default=None,
            help="write the genres to the files (default: import.write)")
        add("-W", "--nowrite", action="store_false", dest="write",
            help="store the genres in the library only")
        add("--min-share", type="float", metavar="P",
            help=f"add further genres that win this share of seconds ({DEFAULT_MIN_SHARE}; "
                 "not for models with per-genre thresholds, whose genres are those that "
                 "reach their threshold)")
        add("--max-genres", type="int", metavar="K",
            help=f"at most this many genres per item ({DEFAULT_MAX_GENRES})")
        add("--force-uncertain", action="store_true", default=None,
            help="tag items with their top genre even when uncertain: it is below the model's "
                 "uncertain threshold (or, with per-genre thresholds, no genre reaches its own)")
        add("--tag-format", metavar="FORMAT",
            help="genre spelling: names (Hip-Hop), model (hiphop) or a JSON file of names")
        add("-e", "--emotion", action="store_true", default=None,
            help="also store valence, energy and danceability")
        add("--weights", metavar="FILE", help="a genre model of 'genre-tag retrain'")
        add("--device", help="auto, cpu, cuda or mps")
        command.func = self.run_command
        return [command]

    def run_command(self, lib: Library, opts: Values, args: list[str]) -> None:
        options = {key: value for key, value in vars(opts).items()
                   if value is not None and key not in ("pretend", "write")}
        self.config.set_args(options)
        settings = self.settings(pretend=opts.pretend, write=ui.should_write(opts.write))
        summary = Summary()
        for item in lib.items(args):
            self.tag_item(item, settings, summary)
        ui.print_(summary.line(settings.pretend))
        if summary.failed:
            raise ui.UserError(f"{summary.failed} of {summary.items} items failed: "
                               "see the lines above")

    def imported(self, session: ImportSession, task: ImportTask) -> None:
        """Import stage (``auto: yes``): tag the new items. The importer writes them to the
        files as it writes all tags (``import.write``; never on an as-is import)."""
        settings = self.settings(pretend=False, write=False)
        for item in task.imported_items():
            self.tag_item(item, settings, Summary())

    def settings(self, pretend: bool, write: bool) -> Settings:
        config = self.config
        min_share = config["min_share"].as_number()
        max_genres = config["max_genres"].get(int)
        if not 0 <= min_share <= 1:
            raise ui.UserError(f"genretag: min_share must be between 0 and 1, not {min_share}")
        if max_genres < 1:
            raise ui.UserError(f"genretag: max_genres must be 1 or more, not {max_genres}")
        try:
            names = tag_names(config["tag_format"].as_str())
        except TaggerError as error:
            raise ui.UserError(f"genretag: {error}") from error
        policy = GenrePolicy(min_share=float(min_share), max_genres=max_genres,
                             force_uncertain=config["force_uncertain"].get(bool), names=names)
        return Settings(policy, config["force"].get(bool), config["emotion"].get(bool),
                        pretend, write)

    def tag_item(self, item: Item, settings: Settings, summary: Summary) -> None:
        """Analyse one item if it needs it, show the change, store it and, when its genres
        changed and ``settings.write``, write its file; a file that fails is reported as one
        line."""
        summary.items += 1
        wants_genre = settings.force or not item.genres
        wants_emotion = settings.emotion and (settings.force or EMOTION_FIELDS[0] not in item)
        if not (wants_genre or wants_emotion):
            summary.left_alone += 1
            self._log.debug("{}: already has genres {}, left alone", item, item.genres)
            return
        path = Path(os.fsdecode(item.path))
        genres_before = list(item.genres)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                genre, emotion = self.analyse(path, wants_genre, wants_emotion)
                if genre is not None:
                    self.set_genres(item, genre, settings.policy, summary)
                if emotion is not None:
                    values = emotion.song_values()
                    for target in EMOTION_TARGETS:
                        item[f"genretag_{target}"] = round(values[target], 3)
        except TaggerError as error:
            summary.failed += 1
            self._log.error("{}", error)
            return
        for warning in caught:
            self._log.warning("{}", warning.message)
        ui.show_model_changes(item, fields=GENRE_FIELDS + EMOTION_FIELDS)
        if settings.pretend:
            return
        if settings.write and item.genres != genres_before:
            try:
                write_atomically(item, self.cleaned_folders)
            except (FileOperationError, TaggerError) as error:
                summary.failed += 1
                self._log.error("{}", error)
        item.store()

    def analyse(self, path: Path, genre: bool, emotion: bool
                ) -> tuple[SongResult | None, EmotionResult | None]:
        """The genre and emotion results of ``path`` that are asked for, from one decode."""
        from tagger.inference import outputs_of

        models: list[AudioModel] = [*([self.genre_tagger()] if genre else []),
                                    *([self.emotion_tagger()] if emotion else [])]
        results = [model.result_from(outputs, str(path), path.stem) for model, outputs
                   in zip(models, outputs_of(models, path, str(path)), strict=True)]
        return (results[0] if genre else None), (results[-1] if emotion else None)

    def set_genres(self, item: Item, result: SongResult, policy: GenrePolicy,
                   summary: Summary) -> None:
        """Set the item's genre fields from its genre result; without a confident genre,
        the item keeps the genres it has."""
        choice = choose_genres(result, policy)
        item["genretag_genres"] = choice.genres
        item["genretag_confidence"] = round(choice.confidence, 3)
        item["genretag_model"] = result.model
        item["genretag_version"] = __version__
        if choice.genres:
            item.genres = choice.genres
            summary.tagged += 1
        else:
            reason = choice.reason or "uncertain"
            summary.no_genre[reason] = summary.no_genre.get(reason, 0) + 1
            self._log.info("{}: no genre, {} (confidence {:.2f}; --force-uncertain tags "
                           "it anyway)", item, reason, choice.confidence)

    def genre_tagger(self) -> Tagger:
        if self._genre_tagger is None:
            # Imported here, not at the top: the model loads only when a command needs it, so
            # other beets commands start as fast as without the plugin.
            from tagger.inference import Tagger

            self._genre_tagger = self._load(Tagger)
        return self._genre_tagger

    def emotion_tagger(self) -> EmotionTagger:
        if self._emotion_tagger is None:
            from tagger.inference import EmotionTagger

            self._emotion_tagger = self._load(EmotionTagger)
        return self._emotion_tagger

    def _load(self, model_class: type[ModelT]) -> ModelT:
        """Load the genre model (``weights``, default the bundled one) or the bundled
        emotion model onto ``device``; a model that cannot load stops the run."""
        weights = self.config["weights"].get()
        use_weights = model_class.task == "genre" and weights
        try:
            return model_class.load(Path(weights) if use_weights else None,
                                    self.config["device"].as_str())
        except TaggerError as error:
            raise ui.UserError(f"genretag: {error}") from error


def write_atomically(item: Item, cleaned_folders: set[Path]) -> None:
    """``item.write()``, into a copy beside the file that then replaces it (as
    ``genre-tag --write-tags`` writes): Ctrl-C or a crash leaves the file as it was or
    fully written. The first write into a folder removes the copies killed runs left
    there (and adds it to ``cleaned_folders``)."""
    from tagger.library.file_swap import (  # av and numpy only when writing
        edited_copy,
        remove_stale_copies_in,
    )

    path = Path(os.fsdecode(item.path))
    folder = Path(os.path.realpath(path)).parent
    if folder not in cleaned_folders:
        remove_stale_copies_in(folder)
        cleaned_folders.add(folder)
    with edited_copy(path, keep_mtime=False) as copy:
        item.write(path=os.fsencode(copy))
    item.mtime = item.current_mtime()
