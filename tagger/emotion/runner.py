"""The ``genre-tag emotion`` workflow: the tagging workflow with the emotion model and renderers."""

from __future__ import annotations

from pathlib import Path

from tagger.runner import Job, TagRequest, run_job


def emotion_job() -> Job:
    from tagger.emotion.inference import EmotionTagger
    from tagger.render.emotion_records import EMOTION_RECORDS
    from tagger.render.emotion_terminal import render_emotion

    def write_png(result: object, path: Path) -> None:
        from tagger.render.emotion_picture import write_emotion_png  # matplotlib only if asked

        write_emotion_png(result, path)  # type: ignore[arg-type]

    return Job(
        load=lambda r: EmotionTagger.load(r.weights, r.device, r.batch_size),
        show=lambda result, console, _: render_emotion(result, console),
        write_png=write_png, records=EMOTION_RECORDS,
    )


def run_emotion(request: TagRequest) -> int:
    return run_job(request, emotion_job())
