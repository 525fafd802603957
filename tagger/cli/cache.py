"""``genre-tag cache info|clear``: the download cache of --url and the results cache."""

from __future__ import annotations

import click

from tagger.cli.common import debug_option, run_reporting_errors

CACHES = ("downloads", "results")


@click.group("cache")
def cache_group() -> None:
    """The download cache of --url and the results cache of every run, in the user cache
    folder."""


@cache_group.command("info")
@debug_option
def cache_info_command(debug: bool) -> None:
    """Show where the caches are and how much they hold."""
    from tagger.download import cache_usage
    from tagger.results_cache import DEFAULT_RESULTS_CACHE_MAX_BYTES, results_cache_usage

    def info() -> int:
        usage = cache_usage()
        click.echo(f"downloads: {usage.folder}: {usage.files} files, {usage.size / 1e6:.1f} MB "
                   "(capped per run by --cache-max, default 2 GB)")
        results = results_cache_usage()
        click.echo(f"results: {results.path}: {results.songs} song results, "
                   f"{results.size / 1e6:.1f} MB (capped at "
                   f"{DEFAULT_RESULTS_CACHE_MAX_BYTES / 1e9:g} GB)")
        return 0

    run_reporting_errors(debug, info)


@cache_group.command("clear")
@click.argument("which", required=False, type=click.Choice(CACHES))
@debug_option
def cache_clear_command(which: str | None, debug: bool) -> None:
    """Delete the cached downloads and song results (or only WHICH)."""
    from tagger.download import clear_cache
    from tagger.results_cache import clear_results_cache

    def clear() -> int:
        if which in (None, "downloads"):
            removed = clear_cache()
            click.echo(f"removed {removed.files} files ({removed.size / 1e6:.1f} MB) "
                       f"from {removed.folder}")
        if which in (None, "results"):
            cleared = clear_results_cache()
            click.echo(f"removed {cleared.songs} song results ({cleared.size / 1e6:.1f} MB) "
                       f"from {cleared.path}")
        return 0

    run_reporting_errors(debug, clear)
