"""The README and the manual in docs/ stay true: links resolve, the commands they show
parse with the real command line (a few run end to end), every option of --help is
documented, every output schema the code writes is on the schemas page, the README stays
a front page, and its two first commands are CI's."""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from tagger.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MANUAL = sorted((ROOT / "docs").glob("*.md"))
# The model cards live in weights/ (tagger/weights is a link to it).
MODEL_CARDS = sorted((ROOT / "weights").glob("*.md"))
README_MAX_LINES = 260
NOT_RUN_HERE = re.compile(r"<!--\s*not run here:\s*(?P<reason>.*?)\s*-->")
SHELL_BLOCKS = ("bash", "sh", "console")
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<info>[\w-]*)\s*$")
HEADING = re.compile(r"^(#{1,6})\s+(?P<text>.+?)\s*#*\s*$")
INLINE_CODE = re.compile(r"`+[^`]*`+")
LINK = re.compile(r"!?\[[^\]]*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
COMMAND_SEPARATORS = {"&&", "||", ";", "|"}


@dataclass(frozen=True)
class Block:
    """A fenced code block: its language, first line number and lines, and the reason
    given in a ``<!-- not run here: REASON -->`` just before it (None when there is none)."""

    path: Path
    language: str
    line: int
    lines: tuple[str, ...]
    not_run_reason: str | None


@dataclass(frozen=True)
class ShownCommand:
    """A ``genre-tag ...`` command shown in a shell block: its arguments after
    ``genre-tag``, and where it is."""

    path: Path
    line: int
    args: tuple[str, ...]
    not_run_reason: str | None

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def text(self) -> str:
        return shlex.join(["genre-tag", *self.args])


def split_markdown(path: Path) -> tuple[list[str], list[Block]]:
    """The lines outside fenced code blocks (blanks in place of code, so line numbers
    hold), and the blocks."""
    prose: list[str] = []
    blocks: list[Block] = []
    opened: tuple[str, int, str | None] | None = None
    body: list[str] = []
    last_written = ""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fence = FENCE.match(line)
        if opened is None and fence:
            reason = NOT_RUN_HERE.search(last_written)
            opened = (fence["info"], number, reason["reason"] if reason else None)
            body = []
        elif opened is not None and fence and not fence["info"]:
            blocks.append(Block(path, opened[0], opened[1], tuple(body), opened[2]))
            opened = None
        elif opened is not None:
            body.append(line)
        prose.append(line if opened is None and not fence else "")
        if line.strip():
            last_written = line
    assert opened is None, f"{path}: a code block opened at line {opened[1]} is not closed"
    return prose, blocks


def heading_slugs(path: Path) -> set[str]:
    """The #anchors GitHub gives the headings of a Markdown file."""
    prose, _ = split_markdown(path)
    slugs: set[str] = set()
    seen: dict[str, int] = {}
    for line in prose:
        heading = HEADING.match(line)
        if not heading:
            continue
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading["text"])
        slug = re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        slugs.add(slug if count == 0 else f"{slug}-{count}")
    return slugs


def relative_links(path: Path) -> list[tuple[int, str]]:
    """Each link and image target of ``path`` that is not a URL, with its line, outside code."""
    prose, _ = split_markdown(path)
    links = []
    for number, line in enumerate(prose, 1):
        for link in LINK.finditer(INLINE_CODE.sub("", line)):
            target = link["target"]
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target):
                links.append((number, target))
    return links


def broken_link(path: Path, target: str) -> str | None:
    """Why ``target`` (a link in ``path``) does not resolve, or None when it does."""
    file_part, _, anchor = target.partition("#")
    # Resolved as GitHub does: ".." by the path's text, never through a symbolic link.
    linked = Path(os.path.normpath(path.parent / file_part)) if file_part else path
    if not linked.exists():
        return f"{file_part} does not exist"
    if anchor:
        if linked.suffix != ".md":
            return f"an #anchor into {file_part}, which is not Markdown"
        if anchor not in heading_slugs(linked):
            return f"no heading of {linked.name} has the anchor #{anchor}"
    return None


def shell_lines(block: Block) -> list[tuple[int, str]]:
    """The command lines of a shell block with their line numbers: continuations joined;
    in a console block only the ``$ `` lines."""
    lines: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for offset, line in enumerate(block.lines, 1):
        number = block.line + offset
        if pending is not None:
            number, line = pending[0], pending[1] + " " + line.strip()
            pending = None
        elif block.language == "console":
            if not line.lstrip().startswith("$ "):
                continue
            line = line.lstrip()[2:]
        if line.rstrip().endswith("\\"):
            pending = (number, line.rstrip()[:-1])
            continue
        lines.append((number, line.strip()))
    return lines


def shown_commands(path: Path) -> list[ShownCommand]:
    """Every ``genre-tag ...`` command in the shell blocks of ``path``."""
    commands = []
    for block in split_markdown(path)[1]:
        if block.language not in SHELL_BLOCKS:
            continue
        for number, line in shell_lines(block):
            words = shlex.split(line, comments=True)
            step: list[str] = []
            for word in [*words, ";"]:
                if word not in COMMAND_SEPARATORS:
                    step.append(word)
                    continue
                if step[:1] == ["genre-tag"]:
                    commands.append(ShownCommand(path, number, tuple(step[1:]),
                                                 block.not_run_reason))
                step = []
    return commands


DOCUMENTS = [README, *MANUAL]
SHOWN = [command for path in DOCUMENTS for command in shown_commands(path)]


def shown(text: str) -> ShownCommand:
    """The shown command that reads ``text``: a command a test runs must be one the docs
    show."""
    found = [command for command in SHOWN if command.text == text]
    assert found, f"the docs no longer show {text!r}"
    return found[0]


def run_cli(command: ShownCommand, *extra: str):
    return CliRunner().invoke(main, [*command.args, *extra])


def all_commands(command: click.Command, name: str) -> list[tuple[str, click.Command]]:
    """``command`` and every sub-command under it, by their full names."""
    found = [(name, command)]
    if isinstance(command, click.Group):
        for sub_name, sub in sorted(command.commands.items()):
            found += all_commands(sub, f"{name} {sub_name}")
    return found


@pytest.mark.parametrize("path", [*DOCUMENTS, *MODEL_CARDS],
                         ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(path: Path) -> None:
    broken = [f"line {line}: ({target}) {why}" for line, target in relative_links(path)
              if (why := broken_link(path, target))]
    assert not broken, f"{path.relative_to(ROOT)}:\n" + "\n".join(broken)


def test_the_link_checker_follows_githubs_slugs(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# Speed and memory\n\n## `genre-tag batch`: archives\n\n## Notes\n\n"
                    "## Notes\n\n```bash\n# not a heading\n```\n")
    assert heading_slugs(page) == {"speed-and-memory", "genre-tag-batch-archives", "notes",
                                   "notes-1"}
    assert broken_link(page, "#notes-1") is None
    assert broken_link(page, "#not-a-heading") is not None
    assert broken_link(page, "missing.md") is not None


def test_the_docs_show_commands_and_mark_the_ones_not_run_here_with_a_reason() -> None:
    assert len(SHOWN) > 20
    assert any(command.not_run_reason for command in SHOWN)
    assert all(command.not_run_reason != "" for command in SHOWN)


@pytest.mark.parametrize("command", [c for c in SHOWN if c.not_run_reason is None],
                         ids=lambda command: command.where)
def test_every_shown_command_parses_with_the_real_command_line(
        command: ShownCommand, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its sub-commands and options exist and take the values given: click answers
    ``--help`` only after the whole command line parsed."""
    monkeypatch.chdir(tmp_path)
    result = run_cli(command, "--help")
    assert result.exit_code == 0 and result.output.startswith("Usage:"), (
        f"{command.where}: {command.text}\n{result.output}")


def test_genre_tag_help_lists_every_command() -> None:
    result = run_cli(shown("genre-tag --help"))
    assert result.exit_code == 0
    for name in main.commands:
        assert name in result.output


def test_cache_info_runs() -> None:
    result = run_cli(shown("genre-tag cache info"))
    assert result.exit_code == 0, result.output


def test_info_runs() -> None:
    if "info" not in main.commands:
        pytest.skip("genre-tag info is not part of this version")
    result = run_cli(shown("genre-tag info"), "--json")
    assert result.exit_code == 0, result.output
    assert isinstance(json.loads(result.stdout), dict)


def readme_quick_start() -> list[list[str]]:
    """The steps of the README's first two shell blocks: install and run the main job,
    install and run the tests."""
    blocks = [b for b in split_markdown(README)[1] if b.language in SHELL_BLOCKS][:2]
    steps = []
    for block in blocks:
        (_, line), = shell_lines(block)
        steps.append([step.strip() for step in line.split("&&")])
    return steps


def test_the_readmes_two_first_commands_are_what_ci_runs() -> None:
    ci_lines = {line.split("#")[0].strip()
                for line in (ROOT / ".ci" / "run").read_text().splitlines()}
    run_the_main_job, run_the_tests = readme_quick_start()
    assert run_the_main_job == ["pip install .", "genre-tag examples/demo-song.mp3"]
    assert run_the_tests == ["pip install '.[test]'", "pytest -q"]
    for step in [*run_the_main_job, *run_the_tests]:
        assert step in ci_lines, f".ci/run no longer runs the README's {step!r}"


def test_the_readmes_first_command_tags_the_demo_song(monkeypatch: pytest.MonkeyPatch) -> None:
    run_the_main_job, _ = readme_quick_start()
    command = shown(run_the_main_job[-1])
    monkeypatch.chdir(ROOT)
    result = run_cli(command)
    assert result.exit_code == 0, result.output
    assert "demo-song" in result.stdout and "seconds won" in result.stdout


def test_the_readme_is_a_front_page() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines: move detail into docs/ (at most {README_MAX_LINES})")
    text = "\n".join(lines)
    assert text.count("<!-- model-summary -->") == 1
    assert text.count("<!-- /model-summary -->") == 1


def test_every_option_of_the_command_line_is_in_the_manual() -> None:
    manual = "\n".join(path.read_text(encoding="utf-8") for path in MANUAL)
    missing = []
    for name, command in all_commands(main, "genre-tag"):
        for param in command.params:
            if not isinstance(param, click.Option) or param.hidden:
                continue
            for option in [*param.opts, *param.secondary_opts]:
                if option.startswith("--") and not re.search(
                        rf"(?<![\w-]){re.escape(option)}(?![\w-])", manual):
                    missing.append(f"{name} {option}")
    assert not missing, "options of --help that docs/ never names:\n" + "\n".join(missing)


def test_the_schemas_page_names_every_schema_the_code_writes() -> None:
    from tagger.batch import tables
    from tagger.library import workflow
    from tagger.render import emotion_records, records

    page = (ROOT / "docs" / "schemas.md").read_text(encoding="utf-8")
    for schema in (records.SCHEMA, emotion_records.SCHEMA, workflow.REPORT_SCHEMA,
                   tables.SCHEMA):
        assert f"`{schema}`" in page, f"docs/schemas.md does not document {schema}"
