"""What every command shares: one-line errors and warnings, exit statuses (those of a run
stopped early come from ``interrupts``), quantities with units, the --device and --debug
options, and the hint that a GPU goes unused."""

from __future__ import annotations

import contextlib
import re
import sys
import warnings
from collections.abc import Callable
from typing import Any, NoReturn

import click

from tagger.cli.interrupts import (
    EXIT_OUTPUT_CLOSED,
    signals_raised,
    stop_line,
    stop_writing_standard_output,
)
from tagger.errors import TaggerError, TaggerWarning

EXIT_FAILED = 1


class Quantity(click.ParamType):
    """A number with an optional unit: a duration (90m, 2h) or a size (500MB, 2GB)."""

    def __init__(self, name: str, units: dict[str, float], examples: str) -> None:
        self.name = name
        self.units = units
        self.examples = examples

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        if isinstance(value, int | float):
            return float(value)
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", str(value).lower())
        if match is None or match.group(2) not in self.units:
            self.fail(f"{value!r} is not a {self.name} such as {self.examples}", param, ctx)
        return float(match.group(1)) * self.units[match.group(2)]


DURATION = Quantity("duration", {"": 1, "s": 1, "m": 60, "min": 60, "h": 3600}, "45s, 90m or 2h")
SIZE = Quantity("size", {"": 1, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9,
                         "gb": 1e9}, "500MB or 2GB")


def fail(message: str) -> NoReturn:
    """Print ``message`` as one line on stderr (whatever names it holds) and exit."""
    from tagger.names import printable

    click.echo(f"genre-tag: error: {printable(message)}", err=True)
    sys.exit(EXIT_FAILED)


def run_reporting_errors(debug: bool, action: Callable[[], int]) -> None:
    """Run ``action``; expected failures become one line on stderr and a non-zero exit, and
    genre-tag's warnings one line each (the run goes on). A run stopped early says why on
    one line: Ctrl-C (exit 130), SIGTERM (143), standard output closed by its reader
    (141)."""
    from tagger.names import printable

    python_show_warning = warnings.showwarning

    def show_warning(message: Warning | str, category: type[Warning], *where: Any) -> None:
        if issubclass(category, TaggerWarning):  # print(): lands above a progress bar
            print(f"genre-tag: warning: {printable(str(message))}", file=sys.stderr)
        else:
            python_show_warning(message, category, *where)

    with signals_raised():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("always", TaggerWarning)
                warnings.showwarning = show_warning
                status = action()
        except TaggerError as error:
            if debug:
                raise
            fail(error.message)
        except KeyboardInterrupt as stop:
            line, status = stop_line(stop)
            click.echo(line, err=True)
            sys.exit(status)
        except (BrokenPipeError, SystemExit) as error:
            from tagger.render.records import output_closed

            if not output_closed(error):
                raise
            stop_writing_standard_output()
            with contextlib.suppress(OSError):
                click.echo("genre-tag: stopped: standard output was closed by the program "
                           "reading it", err=True)
            sys.exit(EXIT_OUTPUT_CLOSED)
    sys.exit(status)


def hint_unused_gpu(device: str) -> None:
    """Say on stderr, once before a run tags, that a GPU driver is present but tagging on
    ``device`` runs on the CPU for want of torch (``tagger.devices.unused_gpu_hint``)."""
    from tagger.devices import unused_gpu_hint

    if (line := unused_gpu_hint(device)) is not None:
        click.echo(f"genre-tag: {line}", err=True)


device_option = click.option(
    "--device", default="auto", show_default=True,
    type=click.Choice(["auto", "cpu", "cuda", "mps"], case_sensitive=False),
    help="Where the model runs; auto picks CUDA, then Apple MPS, then the CPU (always the "
         "CPU without torch: where a GPU driver is present, tagging says once how to use it; "
         "GENRE_TAG_NO_GPU_HINT=1 silences that).",
)
debug_option = click.option("--debug", is_flag=True, help="Show tracebacks of failures.")
