"""Estimate a data set's album and artist groups from embedding similarity.

Embeds every clip of a data set folder (Emotify, 4Q, or a GTZAN-style folder
with ``clips.csv``) with frozen backbones (default: the bundled genre model's,
``musicnn-msd`` and ``musicnn-mtt``), averages each clip's seconds, and prints
the near-duplicates (cosine similarity at least ``--duplicates``) and the
pairs whose genre-centred vectors are at least ``--threshold`` similar,
marking those the seeded split (``--seed``, ``--valid-share``, as ``genre-tag
retrain`` splits) puts on opposite sides. With ``--write FILE`` it writes the
groups (connected components of the latter pairs) as a ``groups.csv``
(``file, group``); put it beside the data set's ``labels.csv`` and its split
keeps every group on one side. ``tagger/datasets/emotify_groups.py`` holds the
estimate for Emotify, made with the defaults::

    python tools/estimate_groups.py ../shared/data/emotify --write /tmp/groups.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from tagger.datasets.audio import discover_clips
from tagger.datasets.melgrams import default_cache_dir
from tagger.datasets.sources import EMOTION_SOURCES, source_kind
from tagger.datasets.splits import VALID, Clip, assign_splits
from tagger.training.neighbours import (
    embed_clips,
    estimated_groups,
    genre_centred,
    similar_pairs,
    write_group_table,
)
from tagger.training.transfer import load_backbones

# Calibrated on 4Q, whose artists are known: of its pairs at least 0.75 similar once centred,
# about a third are one artist's (of all its pairs, 0.4 %).
DEFAULT_THRESHOLD = 0.75
DUPLICATE_THRESHOLD = 0.99


def read_folder(folder: Path, valid_share: float, seed: int) -> list[Clip]:
    kind = source_kind(folder)
    if kind == "gtzan":
        return discover_clips(folder, valid_share, seed)[0]
    if kind not in EMOTION_SOURCES:
        raise SystemExit(f"{folder}: not an Emotify, 4Q or GTZAN-style data set folder")
    return assign_splits(EMOTION_SOURCES[kind](folder), valid_share, seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", type=Path, help="a data set folder")
    parser.add_argument("--weights", action="append", type=Path,
                        help="backbone(s) to embed with (default: musicnn-msd, musicnn-mtt)")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                        help="genre-centred similarity that puts two clips in one group")
    parser.add_argument("--duplicates", type=float, default=DUPLICATE_THRESHOLD,
                        help="similarity that marks a near-duplicate")
    parser.add_argument("--show", type=int, default=20, help="pairs to print")
    parser.add_argument("--valid-share", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--write", type=Path, help="write the groups to this groups.csv")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    backbone = load_backbones(args.weights or [Path("musicnn-msd"), Path("musicnn-mtt")])
    clips, vectors = embed_clips(read_folder(args.data, args.valid_share, args.seed),
                                 backbone, args.cache_dir, torch.device("cpu"))
    print(f"{len(clips)} clips")
    for what, pairs in (
            (f"near-duplicates (similarity >= {args.duplicates})",
             similar_pairs(clips, vectors, args.duplicates)),
            (f"group links (genre-centred similarity >= {args.threshold})",
             similar_pairs(clips, genre_centred(clips, vectors), args.threshold))):
        across = sum(pair.across_split for pair in pairs)
        print(f"{what}: {len(pairs)} pairs, {across} across train and {VALID}")
        for pair in pairs[: args.show]:
            side = "across" if pair.across_split else "same side"
            print(f"  {pair.similarity:.4f}  {pair.first.name}  {pair.second.name}  ({side})")
    files = [clip.path.relative_to(args.data).as_posix() for clip in clips]
    groups = estimated_groups(clips, vectors, args.threshold, files)
    print(f"{len(set(groups.values()))} groups of two or more clips hold {len(groups)} clips")
    if args.write:
        write_group_table(args.write, groups)


if __name__ == "__main__":
    main()
