"""``genre-tag --write-tags`` and ``--restore-tags``: every file of a library, one line each,
then a summary.

Files are looked at before any analysis: one that cannot hold tags, is read-only,
or whose genre was set by hand (without ``--overwrite``) is reported and not
analysed. The others go through the tagging run, and each is planned and written
as its result arrives, so an interrupted run leaves every file either as it was
or fully written. One bad file is reported and the rest go on.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from tagger.atomic import RecordFile, output_target, record_file
from tagger.errors import OutputError, TaggerError
from tagger.library.file_swap import ChangedMeanwhile, check_writable, remove_stale_copies_in
from tagger.library.genres import choose_genres
from tagger.library.tagfiles import CannotHoldTags
from tagger.library.undo import UndoStore
from tagger.library.write import (
    PROVENANCE,
    FileTags,
    Plan,
    WriteSettings,
    apply_restore,
    apply_write,
    emotion_fields,
    needs_analysis,
    plan_restore,
    plan_write,
    read_file_tags,
)
from tagger.names import printable
from tagger.output_paths import file_identity
from tagger.render.records import STDOUT, output_closed
from tagger.results import SongResult
from tagger.runner import (
    Outcome,
    TaggedSong,
    TagRequest,
    collect_files,
    print_error,
    run_tagging,
)

REPORT_SCHEMA = "genre-tag/write/1"


@dataclass
class Tally:
    """How many files the run saw, wrote, left as they were (by reason) and failed on."""

    dry_run: bool
    processed: int = 0
    written: int = 0
    skipped: Counter = field(default_factory=Counter)
    errors: int = 0

    def summary(self, from_cache: int | None = None) -> str:
        wrote = (f"written=0 would_write={self.written}" if self.dry_run
                 else f"written={self.written}")
        line = (f"processed={self.processed} {wrote} skipped={sum(self.skipped.values())} "
                f"errors={self.errors}")
        if from_cache is not None:
            line += f" from_cache={from_cache}"
        if self.skipped:
            line += " (skipped: " + ", ".join(
                f"{count} {reason}" for reason, count in self.skipped.most_common()) + ")"
        return line


def shown(values: list[str]) -> str:
    return "; ".join(values) if values else "(none)"


class LibraryRun:
    """The per-file lines, the summary, the report and the undo store of one run."""

    def __init__(self, settings: WriteSettings, report_path: Path | None, to_stderr: bool,
                 stack: ExitStack) -> None:
        self.settings = settings
        self.tally = Tally(settings.dry_run)
        self.out = Console(stderr=to_stderr, highlight=False, soft_wrap=True)
        self.errors = Console(stderr=True, highlight=False, soft_wrap=True)
        self.store = UndoStore(read_only=settings.dry_run)
        stack.callback(self.store.close)
        self.report: RecordFile | None = (stack.enter_context(record_file(report_path))
                                          if report_path else None)

    def line(self, status: str, path: Path, text: str, notes: list[str]) -> None:
        detail = f"  ({'; '.join(notes)})" if notes else ""
        self.out.print(Text(f"{status:<13} {printable(str(path))}: {printable(text)}{detail}"))

    def record(self, path: Path, status: str, plan: Plan | None = None,
               result: SongResult | None = None, error: str | None = None,
               notes: list[str] | None = None) -> None:
        if self.report is None:
            return
        entry: dict[str, Any] = {"schema": REPORT_SCHEMA, "path": os.fsdecode(path),
                                 "status": status, "existing": None, "proposed": None,
                                 "written": {}, "notes": notes or [], "error": error}
        if plan is not None:
            entry.update(existing={k: v for k, v in plan.existing.items() if k != "provenance"},
                         written={k: v for k, v in plan.changes.items() if k != "provenance"}
                         if status in ("written", "restored") else {}, notes=plan.notes)
            if plan.choice is not None and result is not None:
                entry["proposed"] = {
                    "genre": plan.choice.genres, "confidence": round(plan.choice.confidence, 4),
                    "model": result.model, "scores": [
                        {"genre": share.genre, "share_of_seconds": round(share.share_of_seconds, 4),
                         "mean_probability": round(share.mean_probability, 4)}
                        for share in result.summary(3)],
                    "emotion": plan.emotion}
        self.report.write((json.dumps(entry) + "\n").encode("utf-8"))

    def fail(self, path: Path, error: TaggerError) -> None:
        self.tally.errors += 1
        print_error(self.errors, error.message)
        self.record(path, "error", error=error.message)

    def skip(self, path: Path, reason: str, status: str, text: str,
             plan: Plan | None = None, notes: list[str] | None = None,
             result: SongResult | None = None) -> None:
        self.tally.skipped[reason] += 1
        self.line(status, path, text, notes or [])
        self.record(path, status, plan, result, notes=notes)


def inspect_files(run: LibraryRun, files: list[Path], for_restore: bool = False
                  ) -> Iterator[tuple[Path, FileTags]]:
    """The files that may be written, with their tags; the others reported."""
    seen: set[Any] = set()
    for path in files:
        identity = file_identity(path) or os.path.realpath(path)
        if identity in seen:
            continue
        seen.add(identity)
        run.tally.processed += 1
        try:
            tags = read_file_tags(path)
        except CannotHoldTags as error:
            run.skip(path, "cannot hold tags", "cannot tag", error.what, notes=[error.hint or ""])
            continue
        except TaggerError as error:
            run.fail(path, error)
            continue
        try:
            check_writable(path)
        except TaggerError as error:
            run.fail(path, error)
            continue
        if not for_restore and not needs_analysis(tags, run.settings):
            run.skip(path, "set by hand", "left alone", shown(tags.fields["genre"]),
                     notes=["genre set by hand, left alone; --overwrite replaces it"])
            continue
        yield path, tags


def song_writer(run: LibraryRun, tags_of: dict[Path, FileTags]) -> Callable[[TaggedSong], None]:
    """The ``after_song`` hook: plan, write and report one analysed file (with its emotion
    as ``more_results`` under --write-emotion)."""

    def write(song: TaggedSong) -> None:
        path, result = song.path, song.result
        tags = tags_of[path]
        try:
            emotion, emotion_model = None, None
            if run.settings.write_emotion and tags.writable("emotion", run.settings.overwrite):
                [emotion_result] = song.more_results
                emotion = emotion_fields(emotion_result.song_values())
                emotion_model = emotion_result.model
            choice = choose_genres(result, run.settings.policy)
            plan = plan_write(path, tags, choice, result.model, emotion, emotion_model,
                              run.settings)
            if plan.changes and not run.settings.dry_run:
                apply_write(plan, run.store, run.settings)
        except ChangedMeanwhile as error:
            text = f"{shown(tags.fields['genre'])} -> {shown(choice.genres)}"
            if written_meanwhile(path, plan):
                run.skip(path, "up to date", "up to date", text, plan,
                         ["written by another genre-tag run meanwhile"], result)
            else:
                run.skip(path, "changed meanwhile", "left alone", text, plan, [error.what],
                         result)
            return
        except TaggerError as error:
            run.fail(path, error)
            return
        text = f"{shown(tags.fields['genre'])} -> {shown(choice.genres)}"
        if choice.genres:
            text += f" ({choice.confidence:.2f})"
        if emotion is not None:
            text += f"; mood {shown(tags.fields['mood'])} -> {shown(emotion['mood'])}"
        if plan.changes:
            run.tally.written += 1
            status = "would write" if run.settings.dry_run else "written"
            run.line(status, path, text, plan.notes)
            run.record(path, status, plan, result)
        elif any("by hand" in note for note in plan.notes):
            run.skip(path, "set by hand", "left alone", text, plan, plan.notes, result)
        elif not choice.genres:
            run.skip(path, choice.reason or "no genre", "no genre", text, plan, plan.notes,
                     result)
        else:
            run.skip(path, "up to date", "up to date", text, plan, plan.notes, result)

    return write


def written_meanwhile(path: Path, plan: Plan) -> bool:
    """Whether the file now holds what ``plan`` was to write (another run wrote it)."""
    try:
        fields = read_file_tags(path).fields
    except TaggerError:
        return False
    return all(fields[name] == values for name, values in plan.changes.items()
               if name != PROVENANCE)


def remove_stale_copies_of(files: list[Path]) -> None:
    """Delete the copies killed runs left in the folders of ``files``."""
    for folder in dict.fromkeys(Path(os.path.realpath(path)).parent for path in files):
        remove_stale_copies_in(folder)


def check_report_path(report: Path | None, inputs: list[Path]) -> None:
    if report is None:
        return
    output_target(report)
    if file_identity(report) in {file_identity(path) for path in inputs}:
        raise OutputError("is one of the inputs, which --report would overwrite", str(report),
                          "give another report path")


@contextmanager
def summary_when_stopped(run: LibraryRun) -> Iterator[None]:
    """Print the summary of what was done when Ctrl-C, SIGTERM or a closed standard output
    stops the block (on standard error when the output is closed), then stop."""
    try:
        yield
    except (KeyboardInterrupt, BrokenPipeError, SystemExit) as stop:
        if output_closed(stop):
            run.errors.print(run.tally.summary() + " (stopped: standard output was closed; "
                             "every file is as it was or fully written)")
        elif isinstance(stop, KeyboardInterrupt):
            run.out.print(run.tally.summary() + " (interrupted: every file is as it was or "
                          "fully written)")
        raise


def run_write_tags(request: TagRequest, settings: WriteSettings,
                   report: Path | None = None) -> int:
    """Analyse and tag every file of ``request.paths``; returns the exit status."""
    outcome = Outcome()
    files = collect_files(request.paths, outcome)
    check_report_path(report, files)
    to_stderr = STDOUT in (request.json_path, request.csv_path)
    with ExitStack() as stack:
        run = LibraryRun(settings, report, to_stderr, stack)
        for message in outcome.failures:
            run.tally.errors += 1
            print_error(run.errors, message)
        with summary_when_stopped(run):
            tags_of = dict(inspect_files(run, files))
            if not settings.dry_run:
                remove_stale_copies_of(list(tags_of))

            def after_run(analysis: Outcome) -> None:
                run.tally.errors += len(analysis.failures)
                run.out.print(run.tally.summary(analysis.from_cache))

            if tags_of:
                run_tagging(replace(request, paths=list(tags_of), quiet=True,
                                    with_emotion=settings.write_emotion,
                                    after_song=song_writer(run, tags_of),
                                    after_run=after_run))
            else:
                after_run(Outcome())
    return 1 if run.tally.errors else 0


def run_restore_tags(paths: list[Path], settings: WriteSettings,
                     report: Path | None = None) -> int:
    """Put back what every file of ``paths`` held before genre-tag wrote to it."""
    outcome = Outcome()
    files = collect_files(paths, outcome)
    check_report_path(report, files)
    with ExitStack() as stack:
        run = LibraryRun(settings, report, False, stack)
        for message in outcome.failures:
            run.tally.errors += 1
            print_error(run.errors, message)
        with summary_when_stopped(run):
            if not settings.dry_run:
                remove_stale_copies_of(files)
            for path, tags in inspect_files(run, files, for_restore=True):
                try:
                    plan = plan_restore(path, run.store, settings.overwrite)
                    if plan is not None and plan.changes and not settings.dry_run:
                        apply_restore(plan, settings)
                except ChangedMeanwhile as error:
                    run.skip(path, "changed meanwhile", "left alone", shown(tags.fields["genre"]),
                             notes=[error.what])
                    continue
                except TaggerError as error:
                    run.fail(path, error)
                    continue
                if plan is None:
                    run.skip(path, "never written by genre-tag", "untouched",
                             shown(tags.fields["genre"]))
                    continue
                restored = plan.changes.get("genre", tags.fields["genre"])
                text = f"{shown(tags.fields['genre'])} -> {shown(restored)}"
                if plan.changes:
                    run.tally.written += 1
                    status = "would restore" if settings.dry_run else "restored"
                    run.line(status, path, text, plan.notes)
                    run.record(path, status, plan)
                elif plan.notes:
                    run.skip(path, "changed by hand", "left alone", text, plan, plan.notes)
                else:
                    run.skip(path, "already restored", "as before", text, plan)
            run.out.print(run.tally.summary())
    return 1 if run.tally.errors else 0
