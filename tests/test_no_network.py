"""genre-tag opens no socket and looks up no name unless a URL asks it to, in its own
process and in its worker processes, and creates nothing in the home folder outside the
XDG folders (OpenVINO's telemetry did both at every ``import openvino``: an event to
Google Analytics, and ``~/intel``).

Each run is the real CLI in a Python whose ``sitecustomize`` logs every socket event
(``sys.addaudithook``) of every Python process it starts, workers too, with the home and
XDG folders in a temporary folder and no CI variable (the telemetry is quiet in CI)."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from audio_fixtures import synth_song, write_audio
from download_site import serve_site

from tagger.backends import installed

ROOT = Path(__file__).resolve().parents[1]

# The audit events of sockets and name lookups (Python's audit events table).
SOCKET_EVENTS = ("socket.__new__", "socket.bind", "socket.connect", "socket.getaddrinfo",
                 "socket.gethostbyaddr", "socket.gethostbyname", "socket.gethostbyname_ex",
                 "socket.getnameinfo", "socket.sendmsg", "socket.sendto")

AUDIT_HOOK = f'''"""Logs this Python process's start and its socket events, a JSON line each."""
import json, os, sys

_EVENTS = {SOCKET_EVENTS!r}


def _log(record):
    with open(os.environ["SOCKET_LOG"], "a") as log:
        log.write(json.dumps({{"pid": os.getpid(), **record}}) + "\\n")


def _host(event, args):
    """The host or address an event is about."""
    if event in ("socket.bind", "socket.connect", "socket.sendto"):
        address = args[1]
    elif event == "socket.sendmsg":
        address = args[1] if len(args) > 1 else None
    elif event == "socket.__new__":
        return None
    else:
        address = args[0]
    return str(address[0] if isinstance(address, tuple) else address)


def _hook(event, args):
    if event in _EVENTS:
        _log({{"event": event, "host": _host(event, args), "args": repr(args)[:200]}})


_log({{"event": "started", "argv": sys.argv[:2]}})
sys.addaudithook(_hook)
'''

# What makes OpenVINO's telemetry keep quiet, or the runs use other folders than HOME's.
LEFT_OUT = ("CI", "TF_BUILD", "JENKINS_URL", "GENRE_TAG_GRAPHS")

pytestmark = pytest.mark.skipif(not installed("openvino"), reason="openvino is not installed")


@dataclass
class Sandbox:
    """A home folder holding the XDG folders, and the socket log of the runs in it."""

    home: Path
    log: Path
    hooks: Path

    @property
    def xdg_folders(self) -> dict[str, Path]:
        return {"XDG_CACHE_HOME": self.home / ".cache",
                "XDG_DATA_HOME": self.home / ".local" / "share",
                "XDG_CONFIG_HOME": self.home / ".config"}

    def run(self, *args: str) -> subprocess.CompletedProcess:
        """``genre-tag ARGS`` in a process of its own, logged."""
        environment = {name: value for name, value in os.environ.items()
                       if name not in LEFT_OUT and "proxy" not in name.lower()}
        environment.update({name: str(path) for name, path in self.xdg_folders.items()},
                           HOME=str(self.home), SOCKET_LOG=str(self.log),
                           PYTHONPATH=os.pathsep.join([str(self.hooks), str(ROOT)]))
        return subprocess.run([sys.executable, "-m", "tagger", *args], env=environment,
                              capture_output=True, text=True, timeout=600)

    def records(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def socket_events(self) -> list[dict]:
        return [record for record in self.records() if record["event"] != "started"]

    def processes(self) -> set[int]:
        """The Python processes the runs started."""
        return {record["pid"] for record in self.records() if record["event"] == "started"}

    def files_outside_xdg(self) -> list[Path]:
        return [path for path in self.home.rglob("*") if path.is_file()
                and not any(path.is_relative_to(folder) for folder in self.xdg_folders.values())]


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(AUDIT_HOOK)
    home = tmp_path / "home"
    home.mkdir()
    return Sandbox(home, tmp_path / "sockets.jsonl", hooks)


@pytest.fixture
def songs(tmp_path: Path) -> Path:
    """Three short songs in a folder."""
    folder = tmp_path / "songs"
    folder.mkdir()
    for seed in range(3):
        write_audio(folder / f"song-{seed}.wav", synth_song(4.0, 44100, seed=seed), 44100)
    return folder


def assert_offline_and_tidy(sandbox: Sandbox, finished: subprocess.CompletedProcess) -> None:
    assert finished.returncode == 0, finished.stderr
    assert sandbox.processes(), "the audit hook did not run"
    assert sandbox.socket_events() == []
    assert sandbox.files_outside_xdg() == []
    assert not (sandbox.home / "intel").exists()


def test_tagging_a_song_opens_no_socket(sandbox: Sandbox, songs: Path) -> None:
    finished = sandbox.run(str(songs / "song-0.wav"), "--quiet")
    assert finished.stderr == ""
    assert_offline_and_tidy(sandbox, finished)
    assert (sandbox.home / ".cache" / "genre-tag").is_dir()  # the caches are in the XDG one


def test_worker_processes_open_no_socket(sandbox: Sandbox, songs: Path, tmp_path: Path) -> None:
    records = tmp_path / "songs.jsonl"
    finished = sandbox.run(str(songs), "--jobs", "2", "--json", str(records), "--quiet")
    assert_offline_and_tidy(sandbox, finished)
    assert len(records.read_text().splitlines()) == 3
    assert len(sandbox.processes()) >= 3  # the CLI and its two workers, each logged


def test_writing_tags_opens_no_socket(sandbox: Sandbox, songs: Path, tmp_path: Path) -> None:
    library = tmp_path / "library"
    library.mkdir()
    for song in songs.iterdir():
        shutil.copy(song, library / song.name)
    finished = sandbox.run(str(library), "--write-tags", "--quiet")
    assert_offline_and_tidy(sandbox, finished)
    assert all(copy.read_bytes() != (songs / copy.name).read_bytes()
               for copy in library.glob("*.wav"))  # the tags were written


def test_emotion_opens_no_socket(sandbox: Sandbox, songs: Path) -> None:
    finished = sandbox.run("emotion", str(songs / "song-1.wav"), "--quiet")
    assert_offline_and_tidy(sandbox, finished)


def test_a_local_batch_opens_no_socket(sandbox: Sandbox, songs: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    finished = sandbox.run("batch", str(songs), "--out", str(results), "--engine", "local")
    assert_offline_and_tidy(sandbox, finished)
    assert list((results / "songs").glob("*.parquet"))


def test_a_url_connects_to_its_host_only(sandbox: Sandbox, songs: Path, tmp_path: Path) -> None:
    with serve_site(tmp_path) as site:
        shutil.copy(songs / "song-2.wav", site.root / "x.wav")
        finished = sandbox.run("--url", f"{site.base}/x.wav", "--quiet")
    assert finished.returncode == 0, finished.stderr
    assert "/x.wav" in site.served
    events = sandbox.socket_events()
    reached = {event["host"] for event in events
               if event["event"] not in ("socket.__new__", "socket.bind")}
    assert reached == {"127.0.0.1"}
    assert any(event["event"] == "socket.connect" for event in events)
    # urllib3 binds ::1 to learn whether the machine has IPv6: loopback, no connection
    assert all(ipaddress.ip_address(event["host"]).is_loopback
               for event in events if event["event"] == "socket.bind")
    assert sandbox.files_outside_xdg() == []
