"""CPU time per second of audio on one thread, and what a million tracks would cost.

Run: python benchmarks/bench_costs.py [--data ../shared/data] [--songs 20]
     [--weights genre-musicnn17 genre-sources11]

On --songs GTZAN clips (30 s each, evenly from every genre), in this process, one thread
(OpenVINO's and torch's), each song decoded once to warm up: the CPU seconds
(``time.process_time``) of decoding, checksum and melgrams alone (``clip_melgrams``: the
product's decode and front end), and of the whole analysis (``Tagger.outputs``) with each
model, whose difference is the model's. Then the scaling plan of docs/archives.md, from
those figures alone: a million tracks of 3.5 minutes on CPU nodes of 32 vCPUs, perfect
scaling, at $0.04 a vCPU-hour, reading 6.7 MB a track (256 kb/s MP3). Tables ``per_second``
and ``million_tracks`` go to benchmarks/results/bench_costs.json.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench_batch import DATA, real_songs
from results_file import add_out_option, write_results

from tagger.cards import bundled_weights_path, read_card
from tagger.datasets.melgrams import clip_melgrams
from tagger.features import MelgramFrontEnd
from tagger.inference import Tagger

TRACKS, TRACK_SECONDS, TRACK_MB = 1_000_000, 210, 6.7
NODE_VCPUS, VCPU_HOUR_DOLLARS = 32, 0.04


def cpu_seconds(action, songs: list[Path]) -> float:
    started = time.process_time()
    for song in songs:
        action(song)
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--songs", type=int, default=20)
    parser.add_argument("--weights", nargs="+", default=["genre-musicnn17", "genre-sources11"])
    add_out_option(parser, "bench_costs")
    options = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    songs = real_songs(options.data, options.songs)
    audio_seconds = 30.0 * len(songs)
    rows, plan = [], []
    for name in options.weights:
        card, _ = read_card(bundled_weights_path(name))
        spec = card.front_end
        front_end = MelgramFrontEnd(spec)
        tagger = Tagger.load(bundled_weights_path(name), device="cpu", threads=1)
        for song in songs[:2]:  # warm-up: model compilation, file cache
            tagger.outputs(song, str(song))
        decoding = cpu_seconds(lambda song, s=spec, f=front_end: clip_melgrams(song, s, f, None),
                               songs)
        whole = cpu_seconds(lambda song, t=tagger: t.outputs(song, str(song)), songs)
        decode_ms = 1000 * decoding / audio_seconds
        model_ms = 1000 * (whole - decoding) / audio_seconds
        rows.append({"model": name, "backend": tagger.backend,
                     "decoding, checksum and melgrams (ms per s of audio)": round(decode_ms, 2),
                     "model (ms per s of audio)": round(model_ms, 2),
                     "CPU-s per 3.5-min track": round((decode_ms + model_ms) * TRACK_SECONDS
                                                      / 1000, 2)})
        track_cpu_s = rows[-1]["CPU-s per 3.5-min track"]
        cpu_hours = TRACKS * track_cpu_s / 3600
        node_tracks_per_s = NODE_VCPUS / track_cpu_s
        plan.append({"model": name, "CPU-hours": round(cpu_hours),
                     "hours on 10 nodes": round(cpu_hours / NODE_VCPUS / 10, 1),
                     "hours on 50 nodes": round(cpu_hours / NODE_VCPUS / 50, 2),
                     "dollars": round(cpu_hours * VCPU_HOUR_DOLLARS),
                     "model share of the work": round(model_ms / (decode_ms + model_ms), 2),
                     "MB/s read per node": round(node_tracks_per_s * TRACK_MB)})
        print(rows[-1], plan[-1], flush=True)
    write_results("bench_costs", {"per_second": rows, "million_tracks": plan},
                  {"songs": len(songs)}, options.out)


if __name__ == "__main__":
    main()
