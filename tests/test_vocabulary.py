"""The 17-genre vocabulary's targets for real label rows of GTZAN, Emotify and 4Q."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tagger.datasets.vocabulary import (
    CLASSES,
    TAG_SPELLINGS,
    allmusic_targets,
    read_genre_clips,
    source_targets,
)


def targets(row: np.ndarray) -> dict[str, int]:
    """The known targets of a row, by genre."""
    return {g: int(v) for g, v in zip(CLASSES, row, strict=True) if v != -1}


def test_allmusic_genres_are_positives_and_the_rest_negatives() -> None:
    t = allmusic_targets("Jazz; Vocal")  # Vocal neither adds nor removes a genre
    assert targets(t.open) == {g: int(g == "jazz") for g in CLASSES}
    assert not t.partial and not t.outside
    t = allmusic_targets("Blues; R&B")
    assert {g for g, v in targets(t.open).items() if v == 1} == {"blues", "rnb"}
    assert "disco" not in targets(t.open)  # AllMusic may file disco under R&B


def test_pop_rock_is_a_partial_label_over_pop_rock_and_metal() -> None:
    t = allmusic_targets("Country; Pop/Rock")
    known = targets(t.open)
    assert t.partial and known["country"] == 1
    assert not {"pop", "rock", "metal", "disco"} & known.keys()
    assert known["jazz"] == 0 and known["rnb"] == 0


def test_international_means_world_only_alone_or_with_folk_or_latin() -> None:
    assert targets(allmusic_targets("International").open)["world"] == 1
    latin = targets(allmusic_targets("International; Latin").open)
    assert latin["world"] == 1 and latin["latin"] == 1
    death_metal = targets(allmusic_targets("Electronic; International; Pop/Rock").open)
    assert "world" not in death_metal and death_metal["electronic"] == 1
    assert "world" not in targets(allmusic_targets("Country; International").open)


def test_clips_with_only_unmapped_labels_are_outside() -> None:
    t = allmusic_targets("Holiday; Vocal")
    assert t.outside and (t.open == -1).all()
    assert not allmusic_targets("Jazz; Holiday").outside


def test_a_source_says_not_only_for_its_own_genres_unless_closed() -> None:
    t = source_targets("emotify", "rock")
    assert targets(t.open) == {"classical": 0, "electronic": 0, "pop": 0, "rock": 1}
    closed = targets(t.closed)
    assert closed["rock"] == 1 and closed["jazz"] == 0 and closed["latin"] == 0
    assert "metal" not in closed and "folk" not in closed  # close neighbours stay unknown
    gtzan = targets(source_targets("gtzan", "jazz").open)
    assert gtzan["blues"] == 0 and "electronic" not in gtzan and "latin" not in gtzan


def test_new_classes_have_tag_spellings_next_to_todays() -> None:
    assert [TAG_SPELLINGS[g] for g in CLASSES[11:]] == ["R&B", "Folk", "Latin", "World",
                                                       "Soundtrack", "Ambient"]
    assert TAG_SPELLINGS["hiphop"] == "Hip-Hop"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_clip_tables_of_the_three_sources(tmp_path: Path) -> None:
    for file in ("blues/b0.opus", "blues/b1.opus", "jazz/j0.opus", "jazz/j1.opus"):
        write(tmp_path / "gtzan" / file, "audio")
    write(tmp_path / "gtzan" / "clips.csv",
          "file,genre,ff_split\nblues/b0.opus,blues,train\nblues/b1.opus,blues,excluded\n"
          "jazz/j0.opus,jazz,valid\njazz/j1.opus,jazz,train\n")
    write(tmp_path / "emotify" / "pop" / "1.mp3", "audio")
    write(tmp_path / "emotify" / "labels.csv",
          "file,genre,valence,energy,danceability\npop/1.mp3,Pop,0.1,0.2,0.3\n")
    rows = [("a.opus", "Ann", "Jazz; Latin"), ("b.opus", "Bob", "Pop/Rock"),
            ("c.opus", "Cy", "Religious"), ("d.opus", "Ann", "Blues; Vocal")]
    for file, _, _ in rows:
        write(tmp_path / "4q" / file, "audio")
    write(tmp_path / "4q" / "labels.csv",
          "file,artist,quadrant,valence_q,arousal_q,valence_words,arousal_words,"
          "allmusic_genres\n"
          + "".join(f"{f},{a},Q1,1,1,0.5,0.5,{g}\n" for f, a, g in rows))

    clips = {c.key: c for c in read_genre_clips(tmp_path)}

    assert sorted(clips) == ["4q:a.opus", "4q:b.opus", "4q:c.opus", "4q:d.opus",
                             "emotify:pop/1.mp3", "gtzan:blues/b0.opus", "gtzan:jazz/j0.opus",
                             "gtzan:jazz/j1.opus"]
    assert clips["gtzan:jazz/j0.opus"].ff_split == "valid"
    assert clips["emotify:pop/1.mp3"].targets.open[CLASSES.index("pop")] == 1
    latin = clips["4q:a.opus"]
    assert latin.today_label == "" and latin.group == clips["4q:d.opus"].group
    assert {g for g, v in targets(latin.targets.open).items() if v == 1} == {"jazz", "latin"}
    assert clips["4q:d.opus"].today_label == "blues"
    assert clips["4q:b.opus"].usable and clips["4q:b.opus"].targets.partial
    assert clips["4q:c.opus"].targets.outside and not clips["4q:c.opus"].usable


def test_softset_loss_is_the_hand_computed_value() -> None:
    import math

    import torch

    from tagger.training.softset import softset_loss

    logits = torch.log(torch.tensor([[0.5, 0.2, 0.2, 0.1], [0.4, 0.3, 0.2, 0.1]]))
    targets = torch.tensor([[1, 0, -1, -1], [0, 0, 0, 1]])  # row 0: class 0 and {2, 3}
    partial = torch.tensor([1.0, 0.0])
    loss = softset_loss(logits, targets, partial, [2, 3], smoothing=0.1)
    smooth = [-sum(math.log(p) for p in row) / 4 for row in ([.5, .2, .2, .1], [.4, .3, .2, .1])]
    expected = [0.9 * -(math.log(0.5) + math.log(0.3)) / 2 + 0.1 * smooth[0],
                0.9 * -math.log(0.1) + 0.1 * smooth[1]]
    assert loss.tolist() == pytest.approx(expected, rel=1e-6)
