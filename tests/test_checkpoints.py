"""What every checkpoint load verifies, and how a damaged card is reported."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import assert_one_line_error
from safetensors.torch import save as safetensors_bytes

from tagger.cards import bundled_weights_path, card_path_for, sha256_of
from tagger.checkpoints import load_checkpoint, save_checkpoint
from tagger.cli import main
from tagger.errors import ModelError
from tagger.features import FrontEndSpec

SMALL_MODEL = "genre-gtzan10"


def tag_with(weights: Path, song: Path) -> object:
    return CliRunner().invoke(main, [str(song), "--weights", str(weights), "--device", "cpu"])


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    """The small bundled model written again by ``save_checkpoint``."""
    loaded = load_checkpoint(SMALL_MODEL)
    path = tmp_path / "model.safetensors"
    save_checkpoint(loaded.model, loaded.card, path)
    return path


def flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))


def test_a_saved_checkpoint_verifies_itself_without_its_card(saved: Path) -> None:
    card_path_for(saved).unlink()
    assert load_checkpoint(saved).card.name == SMALL_MODEL
    flip_last_byte(saved)
    with pytest.raises(ModelError, match="checksum in their own header"):
        load_checkpoint(saved)


def test_the_header_checksum_covers_the_card_in_the_header(saved: Path) -> None:
    card_path_for(saved).unlink()
    data = saved.read_bytes()
    assert b'"blues' in data
    saved.write_bytes(data.replace(b'"blues', b'"bluez', 1))  # same length: still parses
    with pytest.raises(ModelError, match="checksum in their own header"):
        load_checkpoint(saved)


def test_a_card_without_sha256_falls_back_to_the_header_checksum(saved: Path) -> None:
    card = json.loads(card_path_for(saved).read_text())
    del card["sha256"]
    card_path_for(saved).write_text(json.dumps(card))
    assert load_checkpoint(saved).card.name == SMALL_MODEL
    flip_last_byte(saved)
    with pytest.raises(ModelError, match="checksum"):
        load_checkpoint(saved)


def test_an_old_checkpoint_that_cannot_be_verified_is_refused(tmp_path: Path,
                                                              tone_wav: Path) -> None:
    """Bundled checkpoints have no header checksum: without their card's sha256 they cannot
    be checked, so they are refused rather than loaded unchecked."""
    weights = tmp_path / "old.safetensors"
    shutil.copy(bundled_weights_path(SMALL_MODEL), weights)
    assert_one_line_error(tag_with(weights, tone_wav), "old.safetensors", "cannot be verified")
    card = json.loads(card_path_for(bundled_weights_path(SMALL_MODEL)).read_text())
    del card["sha256"]
    card_path_for(weights).write_text(json.dumps(card))
    assert_one_line_error(tag_with(weights, tone_wav), "cannot be verified", "old.json")
    card["sha256"] = sha256_of(weights)
    card_path_for(weights).write_text(json.dumps(card))
    assert load_checkpoint(weights).card.name == SMALL_MODEL


@pytest.mark.parametrize("card_text", ["[1, 2]", '"sha256"', "null", '{"sha256": 5}', "{"])
def test_a_card_that_is_not_an_object_gives_one_line(tmp_path: Path, tone_wav: Path,
                                                     card_text: str) -> None:
    weights = tmp_path / "model.safetensors"
    shutil.copy(bundled_weights_path(SMALL_MODEL), weights)
    card_path_for(weights).write_text(card_text)
    assert_one_line_error(tag_with(weights, tone_wav), "model.json", "card")


def checkpoint_with_header_card(tmp_path: Path, edit: dict) -> Path:
    """The small bundled model with its header card's fields replaced by ``edit``, and a
    sidecar card whose sha256 matches, so only the card's content can be at fault."""
    loaded = load_checkpoint(SMALL_MODEL)
    card = {**loaded.card.to_dict(), **edit}
    tensors = {k: v.contiguous() for k, v in loaded.model.state_dict().items()}
    weights = tmp_path / "edited.safetensors"
    weights.write_bytes(safetensors_bytes(tensors, metadata={"card": json.dumps(card)}))
    card_path_for(weights).write_text(json.dumps({**card, "sha256": sha256_of(weights)}))
    return weights


@pytest.mark.parametrize("field, value", [("hop_length", 0), ("sample_rate", -8000),
                                          ("n_mels", 0), ("f_max", 0.0), ("n_fft", "400"),
                                          ("top_db", float("nan")), ("context_segments", -1)])
def test_impossible_front_end_numbers_give_one_line(tmp_path: Path, tone_wav: Path,
                                                    field: str, value: object) -> None:
    front_end = {**FrontEndSpec().to_dict(), field: value}
    weights = checkpoint_with_header_card(tmp_path, {"front_end": front_end})
    assert_one_line_error(tag_with(weights, tone_wav), "edited.safetensors", field)


@pytest.mark.parametrize("edit", [{"front_end": [8000]}, {"classes": 3}])
def test_a_header_card_of_the_wrong_shape_gives_one_line(tmp_path: Path, tone_wav: Path,
                                                         edit: dict) -> None:
    weights = checkpoint_with_header_card(tmp_path, edit)
    assert_one_line_error(tag_with(weights, tone_wav), "edited.safetensors", "checkpoint")


def test_a_header_card_that_is_not_an_object_gives_one_line(tmp_path: Path,
                                                            tone_wav: Path) -> None:
    loaded = load_checkpoint(SMALL_MODEL)
    tensors = {k: v.contiguous() for k, v in loaded.model.state_dict().items()}
    weights = tmp_path / "listcard.safetensors"
    weights.write_bytes(safetensors_bytes(tensors, metadata={"card": "[1, 2, 3]"}))
    card_path_for(weights).write_text(json.dumps({"sha256": sha256_of(weights)}))
    assert_one_line_error(tag_with(weights, tone_wav), "listcard.safetensors", "not a JSON object")


def test_the_front_end_spec_refuses_impossible_numbers() -> None:
    assert FrontEndSpec().n_frames == 21
    for bad in ({"hop_length": 0}, {"segment_samples": 0}, {"f_max": 5000.0},
                {"amin": 0.0}, {"min_partial_seconds": 2.0}, {"compression": "cube"},
                {"sample_rate": True}, {"pad_mode": "mirror"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            FrontEndSpec(**bad)
