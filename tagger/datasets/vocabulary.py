"""The 17-genre vocabulary (issue 23): its classes, how AllMusic, Discogs, Last.fm and
MagnaTagATune name each, and every genre clip's targets under it.

Targets per clip and genre: 1 (is), 0 (is not), -1 (unknown). A source says "is not" only
for the genres its own vocabulary offers: GTZAN for its 10, Emotify for its 4, 4Q
(AllMusic's multi-valued, artist-level genres) for every genre it does not name. AllMusic's
"Pop/Rock" is a partial label: at least one of pop, rock, metal, each unknown on its own.
"International" means world only alone or with Folk or Latin (AllMusic also files foreign
artists of any genre under it). A 4Q clip with only AllMusic labels outside the vocabulary
(Vocal, Holiday, ...) is "outside": never trained on, scored for the guesses it still gets.
The closed-world reading also makes a GTZAN or Emotify clip "not" every genre outside its
source's vocabulary, except the close neighbours of ``OVERLAP``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tagger.datasets import audio, emotify, fourq
from tagger.datasets.labels import LABELS_CSV, read_rows
from tagger.errors import DatasetError


@dataclass(frozen=True)
class GenreClass:
    """One class: its tag spelling and its names in other vocabularies (Discogs: genres or,
    where a genre is split, styles; Last.fm: musicnn-msd's tags; MTT: musicnn-mtt's)."""

    name: str
    tag: str
    allmusic: tuple[str, ...]
    discogs: str
    lastfm: tuple[str, ...] = ()
    mtt: tuple[str, ...] = ()


POP_ROCK_LABEL = "Pop/Rock (partial)"
GENRE_CLASSES = (
    GenreClass("blues", "Blues", ("Blues",), "Blues", ("blues",)),
    GenreClass("classical", "Classical", ("Classical",), "Classical", (),
               ("classical", "classic", "opera", "choral", "choir", "harpsichord")),
    GenreClass("country", "Country", ("Country",), "Folk, World, & Country: Country styles",
               ("country",), ("country",)),
    GenreClass("disco", "Disco", (), "Disco (style of Electronic, Funk / Soul)"),
    GenreClass("electronic", "Electronic", ("Electronic",), "Electronic (but Ambient, Disco)",
               ("electronic", "electronica", "electro", "House"), ("electronic", "techno")),
    GenreClass("hiphop", "Hip-Hop", ("Rap",), "Hip Hop", ("Hip-Hop",)),
    GenreClass("jazz", "Jazz", ("Jazz",), "Jazz", ("jazz",)),
    GenreClass("metal", "Metal", (POP_ROCK_LABEL,), "Rock: the Metal styles",
               ("metal", "heavy metal"), ("metal",)),
    GenreClass("pop", "Pop", (POP_ROCK_LABEL,), "Pop", ("pop", "indie pop"), ("pop",)),
    GenreClass("reggae", "Reggae", ("Reggae",), "Reggae"),
    GenreClass("rock", "Rock", (POP_ROCK_LABEL,), "Rock (but the Metal styles)",
               ("rock", "classic rock", "alternative rock", "indie rock", "hard rock",
                "Progressive rock", "punk"), ("rock",)),
    GenreClass("rnb", "R&B", ("R&B",), "Funk / Soul (but Disco)", ("soul", "rnb", "funk")),
    GenreClass("folk", "Folk", ("Folk",), "Folk, World, & Country: Folk styles", ("folk",)),
    GenreClass("latin", "Latin", ("Latin",), "Latin"),
    GenreClass("world", "World", ("International (alone, or with Folk or Latin only)",),
               "Folk, World, & Country: regional styles (African, Celtic, Indian, ...)", (),
               ("indian", "sitar")),
    GenreClass("soundtrack", "Soundtrack", ("Stage & Screen",), "Stage & Screen"),
    GenreClass("ambient", "Ambient", ("New Age",), "Electronic: Ambient, New Age styles",
               ("ambient",), ("ambient", "new age")),
)
CLASSES = tuple(c.name for c in GENRE_CLASSES)
TODAY_CLASSES = CLASSES[:11]  # the bundled genre-musicnn11's vocabulary
TAG_SPELLINGS = {c.name: c.tag for c in GENRE_CLASSES}

# AllMusic genres that name one class; "Pop/Rock" and "International" are handled apart.
ALLMUSIC = {"Blues": "blues", "Classical": "classical", "Country": "country",
            "Electronic": "electronic", "Jazz": "jazz", "Rap": "hiphop", "Reggae": "reggae",
            "R&B": "rnb", "Folk": "folk", "Latin": "latin", "Stage & Screen": "soundtrack",
            "New Age": "ambient"}
POP_ROCK = ("pop", "rock", "metal")  # AllMusic's "Pop/Rock": at least one of these
# AllMusic labels of functions, eras or moods more than sounds: they add and remove nothing.
ALLMUSIC_UNMAPPED = frozenset({"Vocal", "Easy Listening", "Holiday", "Avant-Garde",
                               "Religious", "Comedy/Spoken", "Children's"})
SOURCE_VOCABULARY = {
    "gtzan": ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop",
              "reggae", "rock"),
    "emotify": ("classical", "electronic", "pop", "rock"),
}
# Closed world: neighbours that stay unknown for a GTZAN or Emotify clip of the genre.
OVERLAP = {
    ("gtzan", "blues"): ("rnb",), ("gtzan", "classical"): ("soundtrack", "ambient"),
    ("gtzan", "country"): ("folk",), ("gtzan", "disco"): ("rnb", "electronic"),
    ("gtzan", "hiphop"): ("rnb",), ("gtzan", "jazz"): ("latin",),
    ("gtzan", "pop"): ("rnb", "electronic"), ("gtzan", "reggae"): ("world",),
    ("gtzan", "rock"): ("folk",), ("gtzan", "metal"): (),
    ("emotify", "classical"): ("soundtrack", "ambient"),
    ("emotify", "electronic"): ("ambient", "disco"),
    ("emotify", "pop"): ("rnb", "folk", "disco"), ("emotify", "rock"): ("metal", "folk"),
}


@dataclass(frozen=True)
class GenreTargets:
    """A clip's targets over ``CLASSES`` (int8: 1, 0, -1 unknown), as its source says them
    (``open``) and under the closed-world reading (``closed``)."""

    open: np.ndarray
    closed: np.ndarray
    partial: bool = False  # AllMusic's Pop/Rock: at least one of POP_ROCK
    outside: bool = False  # only AllMusic labels outside the vocabulary


def _index(genre: str) -> int:
    return CLASSES.index(genre)


def allmusic_targets(tags: str) -> GenreTargets:
    """The targets of a 4Q clip's AllMusic genres (``"Jazz; Latin"``)."""
    names = {t.strip() for t in tags.split(";") if t.strip()}
    mapped = {ALLMUSIC[n] for n in names if n in ALLMUSIC}
    partial = "Pop/Rock" in names
    y = np.zeros(len(CLASSES), dtype=np.int8)
    y[[_index(g) for g in mapped]] = 1
    if partial:
        y[[_index(g) for g in POP_ROCK]] = -1
    if partial or names & {"R&B", "Electronic"}:  # AllMusic files disco under these
        y[_index("disco")] = -1
    if "International" in names:
        y[_index("world")] = 1 if not partial and mapped <= {"folk", "latin"} else -1
    outside = not (mapped or partial or "International" in names)
    if outside:
        y[:] = -1
    return GenreTargets(y, y.copy(), partial, outside)


def source_targets(source: str, genre: str) -> GenreTargets:
    """The targets of a GTZAN or Emotify clip labelled ``genre``."""
    y = np.full(len(CLASSES), -1, dtype=np.int8)
    y[[_index(g) for g in SOURCE_VOCABULARY[source]]] = 0
    y[_index(genre)] = 1
    closed = np.where(y == -1, 0, y).astype(np.int8)
    closed[[_index(g) for g in OVERLAP[(source, genre)]]] = -1
    return GenreTargets(y, closed)


@dataclass(frozen=True)
class GenreClip:
    """One clip of the genre sources with its targets under the vocabulary."""

    key: str  # "source:file"
    source: str  # gtzan, emotify or 4q
    path: Path
    group: str  # what stays within one fold: a 4Q artist, an Emotify album group
    targets: GenreTargets
    today_label: str  # its label under today's 11-genre rules ("" when none)
    ff_split: str = ""  # GTZAN's fault-filtered side (train or valid)
    allmusic: str = ""  # 4Q's AllMusic genres

    @property
    def usable(self) -> bool:
        """Has a genre (or Pop/Rock) to train and score on."""
        return bool((self.targets.open == 1).any() or self.targets.partial)


def _check_genre(source: str, genre: str, path: Path) -> None:
    if genre not in SOURCE_VOCABULARY[source]:
        raise DatasetError(f"is labelled {genre!r}, not one of {source}'s genres "
                           f"({', '.join(SOURCE_VOCABULARY[source])})", str(path),
                           f"leave it out of {source}'s labels")


def read_genre_clips(data: Path) -> list[GenreClip]:
    """Every clip of ``data``'s gtzan/ (its ``clips.csv``; excluded rows left out), emotify/
    and 4q/ folders, through each source's own reader."""
    clips = []
    gtzan_root = data / "gtzan"
    gtzan, _ = audio.discover_clips(gtzan_root, 0.2, 0)
    for clip in gtzan:
        file = clip.path.relative_to(gtzan_root).as_posix()
        _check_genre("gtzan", clip.label, clip.path)
        clips.append(GenreClip(f"gtzan:{file}", "gtzan", clip.path, f"gtzan:{file}",
                               source_targets("gtzan", clip.label), clip.label, clip.split))
    for clip in emotify.read_clips(data / "emotify"):
        _check_genre("emotify", clip.label, clip.path)
        clips.append(GenreClip(clip.key, "emotify", clip.path, clip.group,
                               source_targets("emotify", clip.label), clip.label))
    labels = data / "4q" / LABELS_CSV
    allmusic = {row["file"]: row["allmusic_genres"]
                for row in read_rows(labels, ("file", "allmusic_genres"))}
    for clip in fourq.read_clips(data / "4q"):
        tags = allmusic[clip.key.split(":", 1)[1]]
        clips.append(GenreClip(clip.key, "4q", clip.path, clip.group, allmusic_targets(tags),
                               clip.label, allmusic=tags))
    return clips
