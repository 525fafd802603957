"""Tagging: audio in, per-second genre probabilities or emotion values out, in bounded
memory."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import cached_property
from itertools import islice, tee, zip_longest
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from tagger.audio import Segment
from tagger.backends import RunEngine, build_engine, choose_backend
from tagger.cards import ModelCard, bundled_weights_path, read_card, sha256_of
from tagger.devices import (
    TORCH_HINT,
    default_threads,
    device_name,
    require_torch,
    torch_installed,
)
from tagger.errors import ModelError, TaggerError, TaggerWarning
from tagger.features import MelgramFrontEnd, file_segments, stream_runs
from tagger.results import (
    EmotionResult,
    SongResult,
    check_smoothing_window,
    familiarity,
    smooth_probabilities,
    softmax,
)
from tagger.results_cache import ModelOutputs
from tagger.segments import DEFAULT_MIN_SEGMENT_SECONDS, DEFAULT_SWITCH_PENALTY, Segmenter
from tagger.tasks import DEFAULT_EMOTION_MODEL, DEFAULT_GENRE_MODEL

if TYPE_CHECKING:
    from torch import nn


def _batches(segments: Iterable[Segment], size: int) -> Iterator[list[Segment]]:
    iterator = iter(segments)
    while batch := list(islice(iterator, size)):
        yield batch


# The command that uses a checkpoint of each task.
TASK_COMMANDS = {"genre": "genre-tag", "emotion": "genre-tag emotion",
                 "tags": "genre-tag retrain --init-weights"}


class AudioModel:
    """A verified checkpoint of one task with its own front end, ready for many songs.
    Its torch model is loaded only when torch runs it, or builds its exported graph: with
    a shipped graph (the bundled models), tagging on the CPU needs no torch."""

    task = "genre"
    default_weights = DEFAULT_GENRE_MODEL

    def __init__(self, card: ModelCard, path: Path, device: str = "cpu", batch_size: int = 64,
                 backend: str = "auto", excerpts: int = 0, threads: int | None = None) -> None:
        if card.task != self.task:
            article = "an" if self.task[0] in "aeiou" else "a"
            raise ModelError(f"is a {card.task} model, not {article} {self.task} model",
                             str(path), f"use it with '{TASK_COMMANDS.get(card.task, card.task)}'")
        if card.front_end is None:
            raise ModelError(
                "was trained on precomputed features that genre-tag cannot compute from audio",
                str(path), "tag with a model trained on audio or on course melgrams")
        self.card = card
        self.path = path
        self.device = device
        self.batch_size = batch_size
        # Analyse only this many excerpts spread over each song (0: every second).
        self.excerpts = excerpts
        # CPU threads for the model (torch's, or the exported graph's).
        self.threads = threads or default_threads()
        self.front_end = MelgramFrontEnd(card.front_end)
        self._model: nn.Module | None = None
        self.engine = self._engine(backend)
        if self.engine is None:  # torch runs it: weights that do not load fail before any song
            self._model = self._load_model()
        # What runs the model: torch, openvino or onnx (``engine.name`` adds the precision).
        self.backend = self.engine.name.split("-")[0] if self.engine else "torch"

    @property
    def model(self) -> nn.Module:
        """The torch model, prepared for inference on ``device`` (loaded at first use)."""
        if self._model is None:
            self._model = self._load_model()
        return self._model

    def _load_model(self) -> nn.Module:
        import torch

        from tagger.checkpoints import load_checkpoint
        from tagger.models import prepare_for_inference

        torch.set_num_threads(self.threads)
        return prepare_for_inference(load_checkpoint(self.path, self.device).model)

    def _model_to_export(self) -> nn.Module:
        require_torch(f"exporting {self.card.name}'s graph (once for these weights)")
        return self.model

    def _engine(self, requested: str) -> RunEngine | None:
        """The exported model ``requested`` (see ``tagger.backends``), or None for torch.
        With auto, a graph that cannot be built leaves torch to do the work, with a warning,
        where torch is installed."""
        backend = choose_backend(requested, self.card, self.device)
        if backend == "torch":
            return None
        spec = self.card.front_end
        try:
            return build_engine(backend, self._model_to_export, spec.context_segments,
                                spec.n_frames, spec.n_mels, self.checksum, self.threads)
        except TaggerError:
            raise
        except Exception as error:  # the exporters' and runtimes' own failures
            if requested != "auto" or not torch_installed():
                hint = ("use --backend torch" if torch_installed()
                        else f"{TORCH_HINT} to run it in torch")
                raise ModelError(f"cannot be run by {backend}: {error}", str(self.path),
                                 hint) from error
            warnings.warn(TaggerWarning(f"{backend} cannot run {self.card.name} ({error}); "
                                        "torch runs it instead"), stacklevel=3)
            return None

    @classmethod
    def load(cls, weights: Path | None = None, device: str = "auto", batch_size: int = 64,
             backend: str = "auto", excerpts: int = 0, threads: int | None = None) -> Self:
        """Load ``weights`` (default: the bundled model of this task) onto ``device``, run
        by ``backend`` (auto, torch, openvino or onnx) on ``threads`` CPU threads, over
        ``excerpts`` excerpts of each song (0: every second)."""
        chosen = device_name(device)
        card, path = read_card(weights or bundled_weights_path(cls.default_weights))
        return cls(card, path, chosen, batch_size, backend, excerpts, threads)

    def tag_source(self, source: str | Path) -> Any:
        """Tag a file, or the audio of an http(s) URL (downloaded first), with the subclass's
        ``tag_file``."""
        text = str(source)
        if text.startswith(("http://", "https://")):
            from tagger.download import fetch_audio

            fetched = fetch_audio(text)
            return self.tag_file(fetched.path, source=text, title=fetched.title)
        return self.tag_file(Path(source))

    @cached_property
    def checksum(self) -> str:
        """The sha256 of the weights file (verified on load): what results are cached under."""
        return sha256_of(self.path)

    @property
    def results_key(self) -> str:
        """What this model's outputs are cached under: the weights' checksum, the backend
        when its outputs are not torch's to float32 precision (bf16), and the excerpts."""
        key = self.checksum
        if self.engine is not None and not self.engine.exact:
            key += f"+{self.engine.name}"
        return key + (f"+excerpts{self.excerpts}" if self.excerpts else "")

    def run_outputs(self, run: np.ndarray, start: int, count: int) -> np.ndarray:
        """The outputs of segments ``run[start : start + count]`` (float32)."""
        if self.engine is not None:
            return self.engine(run)[start : start + count]
        import torch

        context = self.card.front_end.context_segments
        with torch.inference_mode():
            segments = torch.from_numpy(run).to(self.device)
            return self.model.forward_run(segments, start, count, context).float().cpu().numpy()

    @property
    def margin(self) -> int:
        """How many neighbouring segments a run needs on either side (``run_outputs``)."""
        spec = self.card.front_end
        if self.engine is not None:
            return self.engine.margin
        return self.model.run_margin(spec.context_segments, spec.n_frames)

    def outputs(self, path: Path, source: str) -> ModelOutputs:
        """The model's raw outputs for every second of ``path``, the seconds of real audio in
        each, and which are silent: what ``result_from`` turns into a result."""
        return outputs_of([self], path, source)[0]

    def tag_file(self, path: Path, source: str | None = None, title: str | None = None,
                 **options: Any) -> Any:
        """Tag one audio file with the subclass's ``result_from`` (``options`` are its).
        ``source`` and ``title`` name it in outputs (e.g. a URL)."""
        self.check_options(**options)
        source = source or str(path)
        return self.result_from(self.outputs(path, source), source, title or Path(path).stem,
                                **options)

    def check_options(self, **options: Any) -> None:
        """Raise ValueError for options ``result_from`` would refuse."""

    def result_from(self, outputs: ModelOutputs, source: str, title: str,
                    **options: Any) -> Any:
        raise NotImplementedError


class Tagger(AudioModel):
    """The genre tagger, calibrated by its model card's ``temperature`` and
    ``uncertain_below`` (1 and 0, i.e. no calibration, when the card has none), giving
    songs several genres by the card's ``song_genres`` thresholds when it has them."""

    def __init__(self, card: ModelCard, path: Path, device: str = "cpu", batch_size: int = 64,
                 backend: str = "auto", excerpts: int = 0, threads: int | None = None) -> None:
        calibration = card.calibration  # checked before any graph is built
        try:
            self.temperature = float(calibration.get("temperature", 1.0))
            self.uncertain_below = float(calibration.get("uncertain_below", 0.0))
            valid = self.temperature > 0 and 0 <= self.uncertain_below <= 1
        except (TypeError, ValueError):
            valid = False
        if not valid:
            raise ModelError(f"has an invalid calibration {calibration} (temperature must be "
                             "above 0, uncertain_below between 0 and 1)", str(path),
                             "fix the calibration in its model card")
        try:
            self.thresholds = card.genre_thresholds()
            self.familiarity_below = card.genre_familiarity_below()
        except ValueError as error:
            raise ModelError(f"has invalid song genre settings: {error}", str(path),
                             "fix song_genres in its model card") from error
        super().__init__(card, path, device, batch_size, backend, excerpts, threads)

    def check_options(self, *, uncertain_below: float | None = None, smooth_seconds: int = 0,
                      min_segment_seconds: float = DEFAULT_MIN_SEGMENT_SECONDS,
                      switch_penalty: float = DEFAULT_SWITCH_PENALTY) -> None:
        if uncertain_below is not None and not 0 <= uncertain_below <= 1:
            raise ValueError(f"uncertain_below must be between 0 and 1, not {uncertain_below}")
        check_smoothing_window(smooth_seconds)
        Segmenter(1.0, min_segment_seconds, switch_penalty)

    def result_from(
        self, outputs: ModelOutputs, source: str, title: str, *,
        uncertain_below: float | None = None, smooth_seconds: int = 0,
        min_segment_seconds: float = DEFAULT_MIN_SEGMENT_SECONDS,
        switch_penalty: float = DEFAULT_SWITCH_PENALTY,
    ) -> SongResult:
        """The genre result of a song from the model's raw ``outputs``.

        Seconds whose top probability is below ``uncertain_below`` (default: the model
        card's; 0: never) are uncertain; ``smooth_seconds`` (odd, 0: off) averages each
        second's probabilities with its neighbours' before that test. Its segments last
        at least ``min_segment_seconds`` and cost ``switch_penalty`` each
        (``tagger.segments``).
        """
        self.check_options(uncertain_below=uncertain_below, smooth_seconds=smooth_seconds,
                           min_segment_seconds=min_segment_seconds,
                           switch_penalty=switch_penalty)
        threshold = self.uncertain_below if uncertain_below is None else uncertain_below
        probabilities = softmax(outputs.values, self.temperature)
        silent = outputs.silent.copy()
        probabilities[silent] = 0.0
        return SongResult(
            source=source,
            title=title,
            model=self.card.name,
            classes=list(self.card.classes),
            segment_seconds=self.card.front_end.segment_seconds,
            probabilities=smooth_probabilities(probabilities, silent, smooth_seconds),
            valid_seconds=outputs.valid_seconds.copy(),
            silent=silent,
            uncertain_below=threshold,
            thresholds=None if self.thresholds is None else dict(self.thresholds),
            familiarity=familiarity(outputs.values[~silent]),
            familiarity_below=self.familiarity_below,
            smooth_seconds=smooth_seconds,
            min_segment_seconds=min_segment_seconds,
            switch_penalty=switch_penalty,
        )


class EmotionTagger(AudioModel):
    """The emotion tagger: valence, energy and danceability per second."""

    task = "emotion"
    default_weights = DEFAULT_EMOTION_MODEL

    def result_from(self, outputs: ModelOutputs, source: str, title: str) -> EmotionResult:
        """The emotion result of a song from the model's raw ``outputs``."""
        values = outputs.values.copy()
        values[outputs.silent] = np.nan
        return EmotionResult(
            source=source,
            title=title,
            model=self.card.name,
            targets=list(self.card.classes),
            segment_seconds=self.card.front_end.segment_seconds,
            values=values,
            valid_seconds=outputs.valid_seconds.copy(),
            silent=outputs.silent.copy(),
        )


def outputs_of(models: Sequence[AudioModel], path: Path, source: str) -> list[ModelOutputs]:
    """The outputs (``AudioModel.outputs``) of each of ``models`` for ``path``, in their
    order. Models with the same front end share one decode and its melgrams: the genre
    and emotion models of ``--write-emotion`` cost one decode."""
    outputs: dict[int, ModelOutputs] = {}
    for spec in dict.fromkeys(model.card.front_end for model in models):
        group = [index for index, model in enumerate(models) if model.card.front_end == spec]
        shared = run_over_file(path, source, [models[index] for index in group])
        outputs.update(zip(group, shared, strict=True))
    return [outputs[index] for index in range(len(models))]


def run_over_file(path: Path, source: str, models: Sequence[AudioModel]) -> list[ModelOutputs]:
    """``outputs_of`` for models with one front end, over one decode of ``path``. The
    melgrams stream through every model together, unless one of them analyses excerpts
    only: those need the song's length, so its melgrams are kept (about 90 MB an hour at
    the bundled models' front end) until they are known."""
    first = models[0]
    valid: list[float] = []
    silent: list[bool] = []
    batches = melgram_batches(path, source, first.front_end, first.batch_size, valid, silent)
    if not any(model.excerpts for model in models):
        values = run_over_melgrams(batches, [(model.run_outputs, model.margin)
                                             for model in models])
        return [ModelOutputs(model_values, np.array(valid, dtype=np.float64),
                             np.array(silent, dtype=bool)) for model_values in values]
    song = np.concatenate(list(batches))
    valid_seconds, silent_segments = np.array(valid, dtype=np.float64), np.array(silent, dtype=bool)
    outputs = []
    for model in models:
        if model.excerpts:
            values, analysed = run_over_excerpts(song, model.run_outputs, model.margin,
                                                 model.excerpts)
            outputs.append(ModelOutputs(values, valid_seconds, silent_segments | ~analysed))
        else:
            [values] = run_over_melgrams(melgram_chunks(song, model.batch_size),
                                         [(model.run_outputs, model.margin)])
            outputs.append(ModelOutputs(values, valid_seconds, silent_segments))
    return outputs


def melgram_batches(path: Path, source: str, front_end: MelgramFrontEnd, batch_size: int,
                    valid: list[float], silent: list[bool]) -> Iterator[np.ndarray]:
    """The melgrams of ``path``'s segments in batches of ``batch_size``, decoded as they are
    asked for; each segment's seconds of real audio go to ``valid`` and whether it is
    silent to ``silent`` as it is decoded."""
    spec = front_end.spec
    for batch in _batches(file_segments(path, spec, source), batch_size):
        valid.extend(s.valid_samples / spec.sample_rate for s in batch)
        silent.extend(s.silent for s in batch)
        yield front_end(np.stack([s.samples for s in batch]))


def melgram_chunks(melgrams: np.ndarray, size: int) -> Iterator[np.ndarray]:
    """A song's melgrams, kept whole, in consecutive batches of ``size``."""
    return (melgrams[start : start + size] for start in range(0, len(melgrams), size))


# What runs a model over a run of melgrams (``AudioModel.run_outputs``), and that with the
# neighbours a run needs on either side (``AudioModel.margin``).
RunOutputs = Callable[[np.ndarray, int, int], np.ndarray]
Runner = tuple[RunOutputs, int]


def run_over_melgrams(batches: Iterable[np.ndarray], runners: Sequence[Runner]
                      ) -> list[np.ndarray]:
    """The outputs of each of ``runners`` (float32, one row per segment) for a song's
    melgrams, given in consecutive batches ``(S, frames, mels)``: each segment sees its
    neighbours across batch boundaries, so the batching does not change the outputs. The
    runners take each batch in turn, so only a batch or two is held for the slower."""
    copies = tee(batches, len(runners))
    streams = [_run_stream(copy, run_outputs, margin)
               for copy, (run_outputs, margin) in zip(copies, runners, strict=True)]
    rows: list[list[np.ndarray]] = [[] for _ in runners]
    for step in zip_longest(*streams):
        for collected, values in zip(rows, step, strict=True):
            if values is not None:
                collected.append(values)
    return [np.concatenate(collected).astype(np.float32) for collected in rows]


def _run_stream(batches: Iterable[np.ndarray], run_outputs: RunOutputs,
                margin: int) -> Iterator[np.ndarray]:
    for run, start, count in stream_runs(batches, margin):
        yield run_outputs(run, start, count)


# How long each excerpt of ``--excerpts`` is, in segments (seconds).
EXCERPT_SECONDS = 5


def excerpt_spans(n_seconds: int, count: int, seconds: int = EXCERPT_SECONDS
                  ) -> list[tuple[int, int]]:
    """``count`` excerpts of ``seconds`` spread evenly over a song of ``n_seconds``, as
    ``(start, stop)`` segment ranges, first to last; the whole song when they would cover
    it."""
    if count * seconds >= n_seconds:
        return [(0, n_seconds)]
    starts = [min(n_seconds - seconds, max(0, round((i + 0.5) * n_seconds / count
                                                     - seconds / 2)))
              for i in range(count)]
    return [(start, start + seconds) for start in starts]


def excerpt_seconds(n_seconds: int, count: int, seconds: int = EXCERPT_SECONDS) -> np.ndarray:
    """The segment indices ``excerpt_spans`` covers."""
    return np.concatenate([np.arange(start, stop)
                           for start, stop in excerpt_spans(n_seconds, count, seconds)])


def run_over_excerpts(song: np.ndarray, run_outputs: RunOutputs, margin: int,
                      count: int) -> tuple[np.ndarray, np.ndarray]:
    """The outputs for ``count`` excerpts of a song's melgrams only (``excerpt_spans``):
    what every-second analysis gives them; the other segments get zeros. Also returns
    which segments were analysed."""
    analysed = np.zeros(len(song), dtype=bool)
    rows: list[tuple[int, np.ndarray]] = []
    for start, stop in excerpt_spans(len(song), count):
        low, high = max(0, start - margin), min(len(song), stop + margin)
        rows.append((start, run_outputs(song[low:high], start - low, stop - start)))
        analysed[start:stop] = True
    outputs = np.zeros((len(song), rows[0][1].shape[1]), dtype=np.float32)
    for start, values in rows:
        outputs[start : start + len(values)] = values
    return outputs, analysed


def tag(source: str | Path, weights: Path | None = None, device: str = "auto",
        backend: str = "auto") -> SongResult:
    """Tag one file or URL with the bundled model (or ``weights``): the Python API."""
    return Tagger.load(weights, device, backend=backend).tag_source(source)


def tag_emotion(source: str | Path, weights: Path | None = None, device: str = "auto",
                backend: str = "auto") -> EmotionResult:
    """Emotion of one file or URL with the bundled model (or ``weights``): the Python API."""
    return EmotionTagger.load(weights, device, backend=backend).tag_source(source)
