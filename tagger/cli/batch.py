"""``genre-tag batch``: many songs into Parquet tables, in this process or on Ray Data
(``tagger.batch``). Ray is imported only with ``--engine ray``."""

from __future__ import annotations

from pathlib import Path

import click

from tagger.cli.common import debug_option, device_option, hint_unused_gpu, run_reporting_errors

EXIT_OK, EXIT_SOME_FAILED = 0, 1


@click.command("batch")
@click.argument("sources", nargs=-1, required=True, metavar="SOURCES...")
@click.option("--out", "results_dir", required=True, metavar="RESULTS_DIR",
              type=click.Path(file_okay=False, path_type=Path),
              help="Folder of the Parquet tables (songs/, seconds/, errors/); a run with the "
                   "same folder skips the songs it holds.")
@click.option("--engine", default="local", show_default=True,
              type=click.Choice(["local", "ray"]),
              help="local: this process, no Ray; ray: a Ray Data pipeline (pip install "
                   "'genre-tag[ray]').")
@click.option("--address", metavar="auto|ray://HOST:PORT",
              help="The Ray cluster to run on (--engine ray); default: a Ray started on this "
                   "machine for the run.")
@click.option("--task", default="genre", show_default=True,
              type=click.Choice(["genre", "emotion"]), help="What to tag.")
@click.option("--weights", type=click.Path(path_type=Path), metavar="CKPT",
              help="A checkpoint of the task, or a bundled model by name (e.g. "
                   "genre-sources11), instead of the task's default.")
@click.option("--column", default="path", show_default=True, metavar="NAME",
              help="The column of paths or URLs in Parquet or CSV SOURCES.")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1),
              help="Seconds per forward pass.")
@click.option("--songs-per-part", default=64, show_default=True, type=click.IntRange(1),
              help="Songs per Parquet part file; a killed run redoes at most the songs of the "
                   "parts it had not written.")
@click.option("--actors", type=click.IntRange(1), metavar="N",
              help="At most N model actors (--engine ray). [default: as many as the "
                   "cluster's CPUs or GPUs take]")
@click.option("--cpus-per-actor", default=1.0, show_default=True, type=click.FloatRange(0),
              help="CPUs (and model threads) of each model actor (--engine ray).")
@click.option("--gpus-per-actor", default=0.0, show_default=True, type=click.FloatRange(0),
              help="GPUs of each model actor (--engine ray); 0: the model runs on CPUs.")
@device_option
@debug_option
def batch_command(sources: tuple[str, ...], results_dir: Path, engine: str,
                  address: str | None, task: str, weights: Path | None, column: str,
                  batch_size: int, songs_per_part: int, actors: int | None,
                  cpus_per_actor: float, gpus_per_actor: float, device: str,
                  debug: bool) -> None:
    """Tag SOURCES into Parquet tables in RESULTS_DIR: folders, audio files, list files
    (.txt .list .m3u: a path or URL a line) and Parquet or CSV tables (--column).

    \b
    genre-tag batch ~/Music --out results/
    genre-tag batch songs.txt --out results/ --engine ray
    genre-tag batch catalogue.parquet --column uri --out s3-mounted/ --engine ray \\
        --address auto --gpus-per-actor 1
    """
    ctx = click.get_current_context()
    ray_only = [name for name in ("address", "actors", "cpus_per_actor", "gpus_per_actor")
                if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE]
    if engine != "ray" and ray_only:
        raise click.UsageError(f"--{ray_only[0].replace('_', '-')} is for --engine ray")
    from tagger.batch.request import BatchRequest, RaySettings

    if engine == "local":
        hint_unused_gpu(device)

    request = BatchRequest(
        list(sources), results_dir, engine, task, weights, device, batch_size, songs_per_part,
        column, RaySettings(address, actors, cpus_per_actor, gpus_per_actor))

    def run() -> int:
        from tagger.batch.run import run_batch
        from tagger.names import printable

        summary = run_batch(request)
        click.echo(f"genre-tag batch: {printable(summary.line(results_dir))}", err=True)
        return EXIT_SOME_FAILED if summary.failed else EXIT_OK

    run_reporting_errors(debug, run)

