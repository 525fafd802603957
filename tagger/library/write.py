"""What genre-tag writes into a file, what it leaves alone, and how it undoes it.

The fields come in two groups: the genre, and the emotion (mood word, valence,
energy, danceability). The provenance field (``GENRE_TAGGER``) is a JSON object
of what genre-tag last wrote: ``{"by": "genre-tag 0.2.0", "models": {"genre":
"genre-musicnn11"}, "fields": {"genre": ["Hip-Hop"]}}``. A group is
genre-tag's own while the file still holds exactly what the provenance says was
written; a group with any other value was set by hand (or by another tool) and
is left alone unless ``overwrite``. So a re-run after a model update replaces
genre-tag's own genres, and never a genre someone typed, even over an earlier
genre-tag genre.

Right before a file is swapped for its edited copy its fields are read again: a file
changed meanwhile (by a person, another program or another run) is left as it is. Then
the value each field held goes into the undo store, with the bytes the write replaces;
the provenance also keeps the values it replaced (``before``). ``plan_restore`` puts
those back: the original bytes where nothing else changed since, else the fields from
the undo store, else from the provenance (a group changed by hand since genre-tag wrote
it is left alone unless ``overwrite``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tagger import __version__
from tagger.audio import audio_content_sha256
from tagger.library.byte_edits import ByteEdit, byte_edit, file_sha256, rebuild_original
from tagger.library.file_swap import ChangedMeanwhile, SwapCheck, TagWriteError, edited_copy
from tagger.library.genres import GenreChoice, GenrePolicy
from tagger.library.tagfiles import FIELDS, open_tagged, read_fields, write_fields
from tagger.library.undo import UndoStore

GROUPS: dict[str, tuple[str, ...]] = {
    "genre": ("genre",),
    "emotion": ("mood", "valence", "energy", "danceability"),
}
PROVENANCE = "provenance"
# The mood word of each quadrant of valence (positive from 0.5) and energy (high from
# 0.5), after Russell's circumplex and the 4Q dataset's quadrants.
MOODS = {(True, True): "Happy", (False, True): "Tense", (False, False): "Sad",
         (True, False): "Calm"}


class OriginalNotRebuilt(TagWriteError):
    """The undo store's bytes do not give back the original (the fields are restored)."""


@dataclass(frozen=True)
class WriteSettings:
    policy: GenrePolicy = field(default_factory=GenrePolicy)
    dry_run: bool = False
    overwrite: bool = False
    touch: bool = False
    write_emotion: bool = False


@dataclass(frozen=True)
class FileTags:
    """The fields genre-tag owns as a file holds them, and its provenance object."""

    fields: dict[str, list[str]]
    provenance: dict

    def state(self, group: str) -> str:
        """``empty``, ``ours`` (what genre-tag wrote, unchanged) or ``by hand``."""
        values = {name: self.fields[name] for name in GROUPS[group]}
        if not any(values.values()):
            return "empty"
        written = self.provenance.get("fields", {})
        if all(written.get(name, []) == value for name, value in values.items()):
            return "ours"
        return "by hand"

    def writable(self, group: str, overwrite: bool) -> bool:
        return overwrite or self.state(group) != "by hand"


def read_file_tags(path: Path) -> FileTags:
    """Raises TagWriteError (CannotHoldTags for a format without tags)."""
    fields = read_fields(open_tagged(path))
    try:
        provenance = json.loads(fields[PROVENANCE][0]) if fields[PROVENANCE] else {}
    except json.JSONDecodeError:
        provenance = {}
    return FileTags(fields, provenance if isinstance(provenance, dict) else {})


def needs_analysis(tags: FileTags, settings: WriteSettings) -> bool:
    """Whether any group the run writes may be written into this file."""
    return tags.writable("genre", settings.overwrite) or (
        settings.write_emotion and tags.writable("emotion", settings.overwrite))


def emotion_fields(song_values: Mapping[str, float]) -> dict[str, list[str]] | None:
    """The emotion group's values for a song's valence, energy and danceability (None
    when they are unknown: a song of silence)."""
    if any(math.isnan(song_values[name]) for name in ("valence", "energy", "danceability")):
        return None
    mood = MOODS[song_values["valence"] >= 0.5, song_values["energy"] >= 0.5]
    return {"mood": [mood], **{name: [f"{song_values[name]:.2f}"]
                               for name in ("valence", "energy", "danceability")}}


@dataclass
class Plan:
    """What happens to one file: the fields to set (``changes``, empty: nothing) and why
    each group that is not written is left as it is."""

    path: Path
    tags: FileTags
    changes: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    choice: GenreChoice | None = None
    emotion: dict[str, list[str]] | None = None
    # For a restore: the file's checksum, and its original bytes where the store keeps them.
    file_sha256: str | None = None
    exact: ByteEdit | None = None

    @property
    def existing(self) -> dict[str, list[str]]:
        return self.tags.fields


def plan_group(plan: Plan, group: str, proposed: dict[str, list[str]],
               settings: WriteSettings) -> bool:
    """Add the group's changes to ``plan`` when it may and needs to be written."""
    state = plan.tags.state(group)
    current = {name: plan.tags.fields[name] for name in GROUPS[group]}
    if current == proposed:
        return False
    if state == "by hand" and not settings.overwrite:
        plan.notes.append(f"{group} set by hand, left alone; --overwrite replaces it")
        return False
    plan.changes.update(proposed)
    return True


def plan_write(path: Path, tags: FileTags, choice: GenreChoice, genre_model: str,
               emotion: dict[str, list[str]] | None, emotion_model: str | None,
               settings: WriteSettings) -> Plan:
    plan = Plan(path, tags, choice=choice, emotion=emotion)
    written = dict(tags.provenance.get("fields", {}))
    models = dict(tags.provenance.get("models", {}))
    before = dict(tags.provenance.get("before", {}))
    for group in GROUPS:  # a group someone changed since is no longer genre-tag's
        if tags.state(group) != "ours":
            models.pop(group, None)
            for name in GROUPS[group]:
                written.pop(name, None)
                before.pop(name, None)
    if not choice.genres:
        plan.notes.append(
            "no genre: silence" if choice.reason == "silent" else
            "no genre: its music is unlike every genre the model knows; "
            "--force-uncertain writes its top genre" if choice.reason == "unfamiliar" else
            f"no genre: uncertain, top genre at {choice.confidence:.2f}; "
            "--force-uncertain writes it")
    elif plan_group(plan, "genre", {"genre": choice.genres}, settings):
        models["genre"] = genre_model
    if settings.write_emotion:
        if emotion is None:
            plan.notes.append("no emotion: silence")
        elif plan_group(plan, "emotion", emotion, settings) and emotion_model:
            models["emotion"] = emotion_model
    if plan.changes:
        written.update(plan.changes)
        before.update({name: tags.fields[name] for name in plan.changes
                       if name not in before and tags.fields[name]})
        provenance = {"by": f"genre-tag {__version__}", "models": models, "fields": written}
        if before:  # what --restore-tags puts back when the undo store is gone
            provenance["before"] = before
        plan.changes[PROVENANCE] = [json.dumps(provenance, ensure_ascii=False)]
    return plan


def unchanged_since_read(plan: Plan) -> SwapCheck:
    """A swap check: the file's fields are still those ``plan`` was made from."""

    def check(target: Path, copy: Path) -> None:
        if read_file_tags(target).fields != plan.tags.fields:
            raise ChangedMeanwhile("its tags changed after genre-tag read them, so genre-tag "
                                   "left it as it is", str(plan.path), "run again to tag it")

    return check


def apply_write(plan: Plan, store: UndoStore, settings: WriteSettings) -> None:
    """Write ``plan`` into the file, unless its fields changed since they were read
    (ChangedMeanwhile); right before the swap, remember the values and bytes it replaces."""
    if not plan.changes:
        return
    replace = {name: plan.tags.state(group) != "ours"
               for group, names in GROUPS.items() for name in names}
    replace[PROVENANCE] = not plan.tags.fields[PROVENANCE]
    originals = {name: plan.tags.fields[name] for name in plan.changes}
    audio_sha256 = audio_content_sha256(plan.path)
    unchanged = unchanged_since_read(plan)

    def remember(target: Path, copy: Path) -> None:
        unchanged(target, copy)
        store.remember(audio_sha256, plan.path, originals, replace,
                       by_path=bool(plan.tags.provenance))
        target_sha256 = file_sha256(target)
        edit = byte_edit(target, copy, store.replaced_bytes(target_sha256), target_sha256)
        if edit is not None:
            store.remember_bytes(file_sha256(copy), edit)

    write_fields(plan.path, plan.changes, keep_mtime=not settings.touch, before_swap=remember)


def plan_restore(path: Path, store: UndoStore, overwrite: bool) -> Plan | None:
    """What restoring ``path`` changes (None: genre-tag never wrote to it). The values come
    from the undo store, or, where it has none, from the file's provenance field (which
    says what genre-tag wrote and what it replaced)."""
    tags = read_file_tags(path)
    originals = store.originals(audio_content_sha256(path), path, by_path=bool(tags.provenance))
    if not originals and tags.provenance.get("fields"):
        before = tags.provenance.get("before", {})
        originals = {name: before.get(name, []) for name in tags.provenance["fields"]
                     if name in FIELDS}
        originals[PROVENANCE] = []
    if not originals:
        return None
    plan = Plan(path, tags)
    for group, names in GROUPS.items():
        before = {name: originals[name] for name in names if name in originals}
        if not before or all(tags.fields[name] == value for name, value in before.items()):
            continue
        if tags.state(group) == "by hand" and not overwrite:
            plan.notes.append(f"{group} changed by hand since genre-tag wrote it, left alone; "
                              "--overwrite restores it anyway")
            continue
        plan.changes.update(before)
    if plan.changes and tags.fields[PROVENANCE] != originals.get(PROVENANCE, []):
        plan.changes[PROVENANCE] = originals.get(PROVENANCE, [])
    if plan.changes:
        plan.file_sha256 = file_sha256(path)
        plan.exact = store.replaced_bytes(plan.file_sha256)
    return plan


def apply_restore(plan: Plan, settings: WriteSettings) -> None:
    """Give the file back its original bytes where genre-tag changed nothing else since it
    wrote them, else put back the fields; either only if the file did not change since
    ``plan`` was made."""
    if not plan.changes:
        return
    exact = plan.exact
    if exact is not None:
        def check(target: Path, copy: Path) -> None:
            if file_sha256(target) != plan.file_sha256:
                raise ChangedMeanwhile("changed after genre-tag read it, so genre-tag left it "
                                       "as it is", str(plan.path), "run again to restore it")
            if file_sha256(copy) != exact.original_sha256:
                raise OriginalNotRebuilt("its kept original does not rebuild", str(plan.path))

        try:
            with edited_copy(plan.path, keep_mtime=not settings.touch,
                             before_swap=check) as copy:
                rebuild_original(plan.path, exact, copy)
            return
        except OriginalNotRebuilt:
            pass  # the fields below
    write_fields(plan.path, plan.changes, keep_mtime=not settings.touch,
                 before_swap=unchanged_since_read(plan))
