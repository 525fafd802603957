"""Group-aware splits: near-identical clips, and estimated album groups, stay on one side."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from audio_fixtures import chord, noise, synth_song, tone, write_audio
from conftest import shared_data

from tagger.datasets import emotify
from tagger.datasets.emotify_groups import ESTIMATED_GROUPS, GROUPED_RATERS
from tagger.datasets.groups import GROUPS_CSV, clip_stem, similarity_groups
from tagger.datasets.sources import discover_emotion_clips, discover_sources
from tagger.datasets.splits import Clip
from tagger.training.neighbours import embed_clips, estimated_groups, write_group_table
from tagger.training.transfer import load_backbone

RATE = 16000
GEMS = list(emotify.GEMS)


def test_similarity_groups_link_chains_and_respect_the_threshold() -> None:
    base = np.eye(4)
    twin = base[0] + 0.01 * base[1]
    between = base[2] + base[3]  # 0.71 similar to both of its neighbours
    vectors = np.stack([base[0], twin, base[2], between, base[3], base[1]])
    assert similarity_groups(vectors, 0.99) == [0, 0, 2, 3, 4, 5]
    assert similarity_groups(vectors, 0.7) == [0, 0, 2, 2, 2, 5]


def write_labels(root: Path, files: list[str], raters: list[int]) -> None:
    with open(root / "labels.csv", "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["file", "genre", "n_raters", *GEMS])
        for i, (file, n) in enumerate(zip(files, raters, strict=True)):
            writer.writerow([file, file.split("/")[0], n, *[(i * 7 + g) % 10 / 10
                                                            for g in range(len(GEMS))]])


def sides(clips: list[Clip], stems: set[str]) -> set[str]:
    return {c.split for c in clips if clip_stem(c.key.split(":", 1)[1]) in stems}


@pytest.mark.slow
def test_near_identical_clips_are_grouped_and_land_on_one_side(tmp_path: Path) -> None:
    """Two encodings of one recording, among clips that differ, embedded by a real musicnn:
    the estimate groups the two alone, and every seeded split keeps them together."""
    root = tmp_path / "emotify"
    (root / "pop").mkdir(parents=True)
    song = synth_song(4.0, RATE, seed=3)
    others = [noise(4.0, RATE, seed=1), chord(4.0, RATE, root=220.0), tone(4.0, RATE, 330.0),
              synth_song(4.0, RATE, seed=8)[::-1].copy(), chord(4.0, RATE, root=97.0),
              noise(4.0, RATE, seed=2, amplitude=0.05) + tone(4.0, RATE, 1200.0)]
    audio = [song, *others, 0.9 * song + noise(4.0, RATE, seed=5, amplitude=0.002)]
    files = [f"pop/{i + 1}.flac" for i in range(len(audio))]
    for file, samples in zip(files, audio, strict=True):
        write_audio(root / file, samples, RATE)
    write_labels(root, files, [20] * len(files))

    clips = emotify.read_clips(root)
    embedded, vectors = embed_clips(clips, load_backbone(Path("musicnn-msd")), None,
                                    torch.device("cpu"))
    assert [c.name for c in embedded] == [c.name for c in clips]
    groups = estimated_groups(embedded, vectors, 0.98, files)
    assert groups == {"pop/1": "pop/1", "pop/8": "pop/1"}
    twins = {"pop/1", "pop/8"}

    split_apart = [seed for seed in range(12)
                   if len(sides(discover_emotion_clips(root, 0.3, seed)[0], twins)) == 2]
    assert split_apart, "by clip, some seeded split puts the twins on both sides"
    write_group_table(root / GROUPS_CSV, groups)
    for seed in range(12):
        clips, _ = discover_emotion_clips(root, 0.3, seed)
        assert len(sides(clips, twins)) == 1
        assert len({c.split for c in clips}) == 2


def test_bundled_estimate_applies_to_emotify_itself_only(tmp_path: Path) -> None:
    """The shipped groups hold for clips named and rated as in Emotify; a data set that only
    shares file names with it is split by clip."""
    group = next(g for g in set(ESTIMATED_GROUPS.values())
                 if sum(v == g for v in ESTIMATED_GROUPS.values()) >= 2)
    members = sorted(stem for stem, g in ESTIMATED_GROUPS.items() if g == group)
    files = [f"{stem}.flac" for stem in members]
    for file in files:
        (tmp_path / file).parent.mkdir(parents=True, exist_ok=True)
        write_audio(tmp_path / file, noise(1.0, RATE), RATE)
    write_labels(tmp_path, files, [GROUPED_RATERS[stem] for stem in members])
    assert len({c.group for c in emotify.read_clips(tmp_path)}) == 1
    write_labels(tmp_path, files, [GROUPED_RATERS[stem] + 1 for stem in members])
    assert len({c.group for c in emotify.read_clips(tmp_path)}) == len(files)


def test_a_groups_file_overrides_the_estimate(tmp_path: Path) -> None:
    files = [f"rock/{i}.flac" for i in range(1, 5)]
    for file in files:
        (tmp_path / "rock").mkdir(exist_ok=True)
        write_audio(tmp_path / file, noise(1.0, RATE, seed=len(file)), RATE)
    write_labels(tmp_path, files, [20] * 4)
    write_group_table(tmp_path / GROUPS_CSV, {"rock/1": "album a", "rock/3": "album a"})
    groups = {c.key: c.group for c in emotify.read_clips(tmp_path)}
    assert groups["emotify:rock/1.flac"] == groups["emotify:rock/3.flac"] == "emotify-group:album a"
    assert len(set(groups.values())) == 3


def test_shared_emotify_groups_never_straddle_the_split() -> None:
    root = shared_data("emotify").parent
    by_source, _ = discover_sources(root, 0.2, 0)
    emotion_clips, _ = discover_emotion_clips(root, 0.2, 0)
    for clips in (by_source["emotify"], [c for c in emotion_clips if c.source == "emotify"]):
        groups: dict[str, set[str]] = {}
        for c in clips:
            groups.setdefault(c.group, set()).add(c.split)
        assert all(len(s) == 1 for s in groups.values())
        assert sum(c.group.startswith("emotify-group:") for c in clips) == len(ESTIMATED_GROUPS)
