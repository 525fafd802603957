from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from audio_fixtures import chord, synth_song, write_audio
from conftest import shared_data
from emotion_fixtures import RATE, make_4q, make_emotify, write_csv

from tagger.audio import decode_to_array
from tagger.datasets import emotify, fourq
from tagger.datasets.emotify import emotify_proxies
from tagger.datasets.labels import percentile_ranks
from tagger.datasets.melgrams import load_clips
from tagger.datasets.ntua import mel_centres, read_emotion_clips, spectrogram_melgrams
from tagger.datasets.sources import discover_emotion_clips
from tagger.datasets.splits import TRAIN, VALID
from tagger.errors import DatasetError
from tagger.features import FrontEndSpec, MelgramFrontEnd
from tagger.tasks import TARGETS

SPEC = FrontEndSpec()


def test_4q_targets_put_every_positive_quadrant_above_every_negative(tmp_path: Path) -> None:
    make_4q(tmp_path)
    clips = fourq.read_clips(tmp_path)
    assert len(clips) == 8
    q1 = [c for c in clips if c.key.startswith("4q:Q1")]
    q3 = [c for c in clips if c.key.startswith("4q:Q3")]
    assert min(c.targets[0] for c in q1) > max(c.targets[0] for c in q3)
    assert min(c.targets[1] for c in q1) > max(c.targets[1] for c in q3)
    assert all(0 < c.targets[0] < 1 and math.isnan(c.targets[2]) for c in clips)
    assert q1[0].notes["valence_q"] == 1 and q3[0].notes["arousal_q"] == 0
    assert q1[0].group == q1[1].group != q1[2].group  # two clips per artist


def test_4q_split_never_puts_an_artist_on_both_sides(tmp_path: Path) -> None:
    make_4q(tmp_path, per_quadrant=6)
    clips, layouts = discover_emotion_clips(tmp_path, valid_share=0.3, seed=1)
    assert layouts == ["4q"]
    sides = {}
    for clip in clips:
        sides.setdefault(clip.group, set()).add(clip.split)
    assert all(len(s) == 1 for s in sides.values())
    assert {c.split for c in clips} == {TRAIN, VALID}
    again, _ = discover_emotion_clips(tmp_path, valid_share=0.3, seed=1)
    assert [c.split for c in again] == [c.split for c in clips]


def test_emotify_derives_the_proxies_when_absent(tmp_path: Path) -> None:
    make_emotify(tmp_path)
    clips = emotify.read_clips(tmp_path)
    assert len(clips) == 6
    happy, sad = clips[0], clips[1]
    for k in range(3):
        assert happy.targets[k] > sad.targets[k]
    fractions = dict.fromkeys(("amazement", "solemnity", "tenderness", "nostalgia",
                               "calmness", "power", "joyful_activation", "tension",
                               "sadness"), 0.1)
    fractions.update(joyful_activation=0.6, sadness=0.05)
    assert happy.notes["danceability"] == pytest.approx(0.6)
    assert happy.notes["valence"] == pytest.approx(emotify_proxies(fractions)[0]) == 0.65
    assert happy.notes["energy"] == pytest.approx(0.6 + 0.1 + 0.1 + 0.1 - 0.1 - 0.1)


def test_emotify_uses_its_proxy_columns(tmp_path: Path) -> None:
    make_emotify(tmp_path, proxies=True)
    clips = emotify.read_clips(tmp_path)
    assert clips[0].notes["valence"] == 1.0 and clips[1].notes["valence"] == -1.0
    assert all(c.group.startswith("emotify-clip:") for c in clips)


def test_percentile_ranks_share_ties_and_keep_nan() -> None:
    ranks = percentile_ranks(np.array([3.0, 1.0, np.nan, 3.0, 2.0]))
    np.testing.assert_allclose(ranks[[1, 4]], [0.125, 0.375])
    assert ranks[0] == ranks[3] == pytest.approx(0.75)
    assert math.isnan(ranks[2])


def ntua_spectrogram(samples: np.ndarray) -> np.ndarray:
    """The course's (140, T) fused spectrogram: librosa log-mel at 22.05 kHz plus chroma."""
    librosa = pytest.importorskip("librosa")
    mel = librosa.power_to_db(librosa.feature.melspectrogram(y=samples, sr=RATE), ref=np.max)
    chroma = librosa.feature.chroma_stft(y=samples, sr=RATE)
    return np.concatenate([mel, chroma]).astype(np.float32)


@pytest.mark.slow
def test_ntua_layout_with_audio_spectrograms_and_missing_targets(tmp_path: Path) -> None:
    song = synth_song(4.0, RATE, seed=3)
    write_audio(tmp_path / "101.wav", song, RATE)
    (tmp_path / "train").mkdir()
    np.save(tmp_path / "train" / "102.fused.full.npy", ntua_spectrogram(song))
    write_csv(tmp_path / "train_labels.txt", ["Id", "valence", "energy", "danceability"],
              [[101, 0.2, 0.9, ""], [102, 0.7, 0.4, 0.5], [103, 0.5, 0.5, 0.5]])
    clips = read_emotion_clips(tmp_path)
    assert [c.key for c in clips] == ["ntua:101", "ntua:102"]  # 103 has no file: skipped
    assert clips[0].targets[:2] == (0.2, 0.9) and math.isnan(clips[0].targets[2])
    assert clips[1].path.name == "102.fused.full.npy"
    write_audio(tmp_path / "train" / "102.flac", song, RATE)  # audio wins over a spectrogram
    assert read_emotion_clips(tmp_path)[1].path.name == "102.flac"
    (tmp_path / "train" / "102.flac").unlink()
    clips = [replace(c, split=TRAIN) for c in clips]
    sets = load_clips([*clips, replace(clips[1], key="v", split=VALID)], SPEC, None)
    assert sets[TRAIN].features.shape[1:] == (21, 128)
    assert np.isnan(sets[TRAIN].clip_targets[0, 2]) and sets[TRAIN].clip_targets[1, 2] == 0.5


@pytest.mark.slow
def test_context_joins_each_second_with_its_neighbours_in_its_own_clip(tmp_path: Path) -> None:
    """Audio and NTUA spectrogram clips alike: rows become what a context model takes."""
    song = synth_song(4.0, RATE, seed=3)
    write_audio(tmp_path / "101.wav", song, RATE)
    np.save(tmp_path / "102.fused.full.npy", ntua_spectrogram(song))
    write_csv(tmp_path / "train_labels.txt", ["Id", "valence"], [[101, 0.2], [102, 0.7]])
    clips = [replace(c, split=s) for c, s in zip(read_emotion_clips(tmp_path), (TRAIN, VALID),
                                                 strict=True)]
    assert clips[1].path.name == "102.fused.full.npy"
    context = FrontEndSpec(context_segments=1)
    plain, joined = load_clips(clips, SPEC, None), load_clips(clips, context, None)
    for split in (TRAIN, VALID):
        single, wide = plain[split].features, joined[split].features
        assert wide.shape == (len(single), *context.input_shape) == (len(single), 63, 128)
        np.testing.assert_array_equal(wide[:, 21:42], single)  # the second itself
        np.testing.assert_array_equal(wide[1:, :21], single[:-1])  # the one before it
        np.testing.assert_array_equal(wide[:-1, 42:], single[1:])  # the one after it
        np.testing.assert_array_equal(wide[0, :21], single[0])  # the first stands in
        np.testing.assert_array_equal(joined[split].clip_ids, plain[split].clip_ids)


@pytest.mark.slow
def test_ntua_spectrograms_approximate_our_melgrams(tmp_path: Path) -> None:
    """The converted course spectrogram resembles our own front end's melgrams of the audio."""
    song = synth_song(6.0, RATE, seed=5)
    path = tmp_path / "7.fused.full.npy"
    np.save(path, ntua_spectrogram(song))
    converted = spectrogram_melgrams(path, SPEC)
    audio = write_audio(tmp_path / "7.wav", song, RATE)
    samples = decode_to_array(audio, SPEC.sample_rate)[: 6 * SPEC.sample_rate]
    native = MelgramFrontEnd(SPEC)(samples.reshape(6, -1))
    assert converted.shape == (6, 21, 128)
    assert converted.max() == 0 and converted.min() >= -80
    bands = native.mean(axis=(0, 1)) > -79  # the non-empty filters
    correlation = np.corrcoef(converted[:, :, bands].mean(axis=1).ravel(),
                              native[:, :, bands].mean(axis=1).ravel())[0, 1]
    assert correlation > 0.8
    librosa = pytest.importorskip("librosa")
    np.testing.assert_allclose(mel_centres(128, 0, 4000),
                               librosa.mel_frequencies(130, fmin=0, fmax=4000)[1:-1], rtol=1e-6)


def test_parent_folder_uses_every_layout_in_it(tmp_path: Path) -> None:
    make_4q(tmp_path / "4q")
    make_emotify(tmp_path / "emotify")
    (tmp_path / "gtzan" / "rock").mkdir(parents=True)
    clips, layouts = discover_emotion_clips(tmp_path, 0.25, 0)
    assert layouts == ["4q", "emotify"]
    assert {c.source for c in clips} == {"4q", "emotify"}
    sets = load_clips(clips, SPEC, tmp_path / "cache")
    assert len(sets[TRAIN].clip_names) + len(sets[VALID].clip_names) == 14
    assert sets[TRAIN].clip_targets.shape[1] == len(TARGETS)
    assert len(list((tmp_path / "cache").iterdir())) == 14  # melgrams cached per clip


def test_bad_layouts_are_named(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        discover_emotion_clips(tmp_path / "nowhere", 0.2, 0)
    with pytest.raises(DatasetError, match="no emotion data layout"):
        discover_emotion_clips(tmp_path, 0.2, 0)
    four = tmp_path / "4q"
    four.mkdir()
    write_csv(four / "labels.csv", ["file", "artist", "quadrant", "valence_q"],
              [["Q1/a.flac", "x", "Q1", 1]])
    with pytest.raises(DatasetError, match="lacks the columns arousal_q, valence_words"):
        fourq.read_clips(four)
    make_4q(four, per_quadrant=1)
    for audio in four.glob("Q*/*.flac"):
        audio.unlink()
    with pytest.raises(DatasetError, match="none of the 2 clips it lists exists"):
        fourq.read_clips(four)
    folder = tmp_path / "emotify"
    folder.mkdir()
    write_csv(folder / "labels.csv", ["file", "genre", "power"], [["pop/1.flac", "pop", 0.1]])
    with pytest.raises(DatasetError, match="nine emotion columns"):
        emotify.read_clips(folder)
    ntua = tmp_path / "ntua"
    ntua.mkdir()
    write_csv(ntua / "train_labels.txt", ["Id", "genre"], [[1, "Rock"]])
    with pytest.raises(DatasetError, match="lacks every target column"):
        read_emotion_clips(ntua)
    write_csv(ntua / "train_labels.txt", ["Id", "valence"], [[1, "high"]])
    write_audio(ntua / "1.wav", chord(2.0, RATE), RATE)
    with pytest.raises(DatasetError, match="'high' is not a number"):
        read_emotion_clips(ntua)
    (ntua / "1.wav").unlink()
    np.save(ntua / "1.fused.full.npy", np.zeros((5, 100)))
    write_csv(ntua / "train_labels.txt", ["Id", "valence"], [[1, 0.5]])
    clip = read_emotion_clips(ntua)[0]
    with pytest.raises(DatasetError, match="expected a"):
        spectrogram_melgrams(clip.path, SPEC)


def test_shared_4q_and_emotify_layouts() -> None:
    four = shared_data("4q")
    emotify = shared_data("emotify")
    clips, layouts = discover_emotion_clips(four.parent, 0.2, 0)
    assert layouts == ["4q", "emotify"]
    by_dataset = {d: [c for c in clips if c.source == d] for d in ("4q", "emotify")}
    assert len(by_dataset["4q"]) == 800 and len(by_dataset["emotify"]) == 320
    artists: dict[str, set[str]] = {}
    for clip in by_dataset["4q"]:
        artists.setdefault(clip.group, set()).add(clip.split)
    assert all(len(sides) == 1 for sides in artists.values())
    for dataset, share in ((d, np.mean([c.split == VALID for c in by_dataset[d]]))
                           for d in by_dataset):
        assert 0.18 <= share <= 0.22, dataset
    assert all(math.isnan(c.targets[2]) for c in by_dataset["4q"])
    assert not any(math.isnan(t) for c in by_dataset["emotify"] for t in c.targets)
    assert (emotify / "labels.csv").is_file()
