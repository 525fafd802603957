"""Tags as they are in the wild: ID3v2.3 and v2.2, genres in APEv2, ID3v1 and a WAV's RIFF
INFO, files with the wrong extension. genre-tag changes only its own fields, in the file's
own tag version, and what a player shows (FFmpeg here) is what it wrote."""

from __future__ import annotations

import json
import struct
import wave
from pathlib import Path

import av
import numpy as np
import pytest
from audio_fixtures import chord, write_audio
from mutagen.apev2 import APEv2
from mutagen.flac import FLAC
from mutagen.id3 import ID3, TCON, TDAT, TIT2, TPE1, TYER
from mutagen.mp3 import MP3

from tagger.audio import audio_content_sha256
from tagger.library.tagfiles import open_tagged, read_fields, write_fields
from tagger.library.write import read_file_tags

RATES = {".mp3": 44100, ".wav": 44100, ".aiff": 22050}


def song(folder: Path, name: str) -> Path:
    path = folder / name
    return write_audio(path, chord(1.0, RATES.get(path.suffix, 44100)), RATES.get(path.suffix))


def genre(path: Path) -> list[str]:
    return read_fields(open_tagged(path))["genre"]


def ffmpeg_tags(path: Path) -> dict[str, str]:
    """The tags FFmpeg (and so Jellyfin, mpv, ...) reads."""
    with av.open(str(path)) as container:
        return {key.lower(): value for key, value in container.metadata.items()}


def id3(path: Path) -> ID3:
    """The ID3v2 tag as it is in the file (nothing translated to v2.4, no ID3v1 merged)."""
    return open_tagged(path).tags if path.suffix != ".mp3" else ID3(
        path, translate=False, load_v1=False)


def frames(tags: ID3, *left_out: str) -> dict[str, str]:
    return {key: frame.pprint() for key, frame in tags.items() if key not in left_out}


def tag_v23(path: Path, genre_text: str) -> None:
    tags = open_tagged(path).tags
    tags.clear()
    tags.add(TIT2(encoding=1, text="Title"))
    tags.add(TYER(encoding=1, text="1999"))
    tags.add(TDAT(encoding=1, text="0101"))
    tags.add(TCON(encoding=1, text=genre_text))
    tags.save(path, v2_version=3)


def written_by_genre_tag(genres: list[str]) -> dict[str, list[str]]:
    provenance = {"by": "genre-tag test", "models": {"genre": "m"}, "fields": {"genre": genres}}
    return {"genre": genres, "provenance": [json.dumps(provenance)]}


@pytest.mark.parametrize("suffix", [".mp3", ".wav", ".aiff"])
def test_an_id3v23_tag_stays_v23_with_its_frames_and_genres_split_at_slashes(
        tmp_path: Path, suffix: str) -> None:
    path = song(tmp_path, "song" + suffix)
    tag_v23(path, "Rock/Pop")
    before = frames(id3(path), "TCON")
    assert genre(path) == ["Rock", "Pop"]
    write_fields(path, {**written_by_genre_tag(["Jazz", "Blues"]), "mood": ["Calm"]})
    tags = id3(path)
    assert tags.version == (2, 3, 0)
    assert tags["TCON"].text == ["Jazz/Blues"]
    assert tags["TXXX:MOOD"].text == ["Calm"] and "TMOO" not in tags  # TMOO is v2.4's
    assert frames(tags, "TCON", "TXXX:GENRE_TAGGER", "TXXX:MOOD") == before  # TYER, TDAT too
    assert b"TYER" in path.read_bytes() and b"TDRC" not in path.read_bytes()
    assert read_file_tags(path).state("genre") == "ours"  # what it wrote reads back equal


@pytest.mark.parametrize("separator", ["; ", ", "])
def test_a_v23_tag_keeps_the_genre_separator_it_uses(tmp_path: Path, separator: str) -> None:
    path = song(tmp_path, "song.mp3")
    tag_v23(path, separator.join(["Rock", "Pop"]))
    assert genre(path) == ["Rock", "Pop"]
    write_fields(path, {"genre": ["Jazz", "Blues"]})
    assert id3(path)["TCON"].text == [separator.join(["Jazz", "Blues"])]
    assert genre(path) == ["Jazz", "Blues"]


@pytest.mark.parametrize("suffix", [".mp3", ".wav", ".aiff"])
def test_an_id3v24_tag_stays_v24_with_one_value_per_genre(tmp_path: Path, suffix: str) -> None:
    path = song(tmp_path, "song" + suffix)
    tags = open_tagged(path).tags
    tags.add(TIT2(encoding=3, text="Title"))
    tags.add(TCON(encoding=3, text="Rock/Pop"))
    tags.save(path, v2_version=4)
    assert genre(path) == ["Rock/Pop"]  # v2.4 separates genres with NUL, not '/'
    write_fields(path, written_by_genre_tag(["Jazz", "Blues"]))
    assert id3(path).version == (2, 4, 0)
    assert id3(path)["TCON"].text == ["Jazz", "Blues"]
    assert id3(path)["TIT2"].text == ["Title"]
    assert read_file_tags(path).state("genre") == "ours"
    assert ffmpeg_tags(path)["genre"] == "Jazz"


def id3v22_tag(frames_text: dict[bytes, str]) -> bytes:
    body = b"".join(frame_id + struct.pack(">I", len(text) + 1)[1:] + b"\0"
                    + text.encode("latin-1") for frame_id, text in frames_text.items())
    size = bytes((len(body) >> shift) & 0x7F for shift in (21, 14, 7, 0))
    return b"ID3\x02\x00\x00" + size + body


def test_an_id3v22_tag_which_mutagen_cannot_write_becomes_v23(tmp_path: Path) -> None:
    path = song(tmp_path, "song.mp3")
    ID3(path).delete(path)
    path.write_bytes(id3v22_tag({b"TT2": "Title", b"TYE": "1999", b"TCO": "(17)Rock/Pop"})
                     + path.read_bytes())
    assert genre(path) == ["Rock", "Pop"]
    write_fields(path, {"genre": ["Jazz"]})
    tags = id3(path)
    assert tags.version == (2, 3, 0)
    assert (tags["TIT2"].text, tags["TYER"].text, tags["TCON"].text) == (
        ["Title"], ["1999"], ["Jazz"])
    assert MP3(path).info.length > 0.9


def test_a_genre_in_an_apev2_tag_is_set_by_hand_and_is_replaced_with_the_main_one(
        tmp_path: Path) -> None:
    path = song(tmp_path, "song.mp3")
    ape = APEv2()
    ape.update({"Genre": "Ambient", "Artist": "Someone"})
    ape.save(path)
    assert genre(path) == ["Ambient"]
    assert read_file_tags(path).state("genre") == "by hand"
    write_fields(path, {"genre": ["Jazz", "Blues"]})  # as --overwrite does
    assert list(APEv2(path)["Genre"]) == ["Jazz", "Blues"]
    assert str(APEv2(path)["Artist"]) == "Someone"
    assert id3(path)["TCON"].text == ["Jazz", "Blues"]
    assert ffmpeg_tags(path)["genre"] == "Jazz"
    write_fields(path, {"genre": []})  # as a restore of a file that had none does
    assert genre(path) == [] and "Genre" not in APEv2(path)


def id3v1_only(path: Path, genre_name: str) -> bytes:
    """Give the MP3 an ID3v1 tag and no ID3v2 tag; returns the ID3v1 tag's bytes."""
    tags = ID3(path)
    tags.add(TIT2(encoding=3, text="Title"))
    tags.add(TPE1(encoding=3, text="Artist"))
    tags.add(TCON(encoding=3, text=genre_name))
    tags.save(path, v1=2)
    ID3(path).delete(path, delete_v1=False, delete_v2=True)
    return path.read_bytes()[-128:]


def test_a_genre_only_in_an_id3v1_tag_is_set_by_hand_and_is_replaced_there(
        tmp_path: Path) -> None:
    path = song(tmp_path, "song.mp3")
    v1_before = id3v1_only(path, "Jazz")
    assert ffmpeg_tags(path)["genre"] == "Jazz"
    assert genre(path) == ["Jazz"]
    assert read_file_tags(path).state("genre") == "by hand"
    write_fields(path, {"genre": ["Rock"]})
    v1_after = path.read_bytes()[-128:]
    assert v1_after[:-1] == v1_before[:-1]  # title, artist, ... as they were
    assert v1_after[-1] == TCON.GENRES.index("Rock")
    assert set(id3(path).keys()) == {"TCON"}  # the ID3v1 fields are not copied into ID3v2
    assert ffmpeg_tags(path)["genre"] == "Rock"
    write_fields(path, {"genre": ["Not A Genre On ID3v1's List"]})
    assert path.read_bytes()[-1] == 255  # no ID3v1 genre rather than a stale one


def test_fields_other_than_the_genre_leave_apev2_and_id3v1_byte_for_byte(tmp_path: Path) -> None:
    path = song(tmp_path, "song.mp3")
    ape = APEv2()
    ape["Genre"] = "Ambient"
    ape.save(path)
    id3v1_only(path, "Jazz")  # after the APEv2 tag, as ID3v1 must be
    tail = path.read_bytes()[-300:]
    write_fields(path, {"mood": ["Calm"], "valence": ["0.20"]})
    assert path.read_bytes()[-300:] == tail
    assert genre(path) == ["Ambient"]  # APEv2 is read before ID3v1
    write_fields(path, {"genre": ["Rock"]})
    assert str(APEv2(path)["Genre"]) == "Rock" and path.read_bytes()[-1] == 17
    assert path.read_bytes()[-128:-125] == b"TAG"


def riff_chunks(data: bytes) -> list[tuple[str, bytes]]:
    """The chunks in ``data``, checking that each size and pad byte adds up to its end."""
    chunks, offset = [], 0
    while offset < len(data):
        chunk_id, size = struct.unpack("<4sI", data[offset:offset + 8])
        chunks.append((chunk_id.decode("ascii"), data[offset + 8:offset + 8 + size]))
        offset += 8 + size + size % 2
    assert offset == len(data)
    return chunks


def wav_chunks(path: Path) -> tuple[list[str], dict[str, bytes]]:
    """A WAV's top-level chunk ids, and its INFO fields; every size checked."""
    data = path.read_bytes()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8
    chunks = riff_chunks(data[12:])
    infos = [body for chunk_id, body in chunks if chunk_id == "LIST" and body[:4] == b"INFO"]
    assert len(infos) <= 1
    info = riff_chunks(infos[0][4:]) if infos else []
    assert len({key for key, _ in info}) == len(info)
    return [chunk_id.lower() for chunk_id, _ in chunks], dict(info)


def wav_by_ffmpeg(source: Path, path: Path, metadata: dict[str, str]) -> Path:
    """``source`` remuxed by FFmpeg with ``metadata``, which it writes as RIFF INFO."""
    with av.open(str(source)) as original, av.open(str(path), "w", format="wav") as out:
        out.metadata.update(metadata)
        stream = out.add_stream_from_template(original.streams.audio[0])
        for packet in original.demux(original.streams.audio[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    return path


def test_a_wav_gets_riff_info_ignr_beside_its_id3_chunk(tmp_path: Path) -> None:
    path = wav_by_ffmpeg(song(tmp_path, "source.wav"), tmp_path / "song.wav",
                         {"title": "A Title", "artist": "Someone"})
    checksum = audio_content_sha256(path)
    _, info_before = wav_chunks(path)
    write_fields(path, {"genre": ["Jazz", "Blues"]})
    chunks, info = wav_chunks(path)
    assert info["IGNR"] == b"Jazz; Blues\0"  # 12 bytes
    assert {key: value for key, value in info.items() if key != "IGNR"} == info_before
    assert genre(path) == ["Jazz", "Blues"]
    write_fields(path, {"genre": ["Jazz"]})  # 5 bytes: a pad byte follows
    chunks, info = wav_chunks(path)
    assert info["IGNR"] == b"Jazz\0" and chunks.count("list") == 1 and chunks.count("id3 ") == 1
    tags = ffmpeg_tags(path)
    assert (tags["genre"], tags["title"], tags["artist"]) == ("Jazz", "A Title", "Someone")
    assert audio_content_sha256(path) == checksum


def test_a_wav_without_riff_info_gets_one_and_loses_it_with_its_genre(tmp_path: Path) -> None:
    path = tmp_path / "plain.wav"
    with wave.open(str(path), "wb") as out:  # Python's own WAV writer: fmt and data only
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes((chord(1.0, 8000) * 32767).astype("<i2").tobytes() + b"\0\0")
    checksum = audio_content_sha256(path)
    assert wav_chunks(path)[0] == ["fmt ", "data"]
    write_fields(path, {"genre": ["Électronique"]})
    chunks, info = wav_chunks(path)
    assert chunks.count("list") == 1 and info == {"IGNR": "Électronique\0".encode()}
    assert ffmpeg_tags(path)["genre"] == "Électronique"
    write_fields(path, {"genre": []})
    assert "list" not in wav_chunks(path)[0] and "genre" not in ffmpeg_tags(path)
    assert audio_content_sha256(path) == checksum
    with wave.open(str(path)) as back:
        assert back.getnframes() == 8001


def test_a_genre_only_in_riff_info_is_set_by_hand_and_is_replaced_there(tmp_path: Path) -> None:
    path = wav_by_ffmpeg(song(tmp_path, "source.wav"), tmp_path / "song.wav",
                         {"genre": "Ambient; Drone"})
    assert genre(path) == ["Ambient", "Drone"]
    assert read_file_tags(path).state("genre") == "by hand"
    write_fields(path, {"genre": ["Jazz"]})
    assert wav_chunks(path)[1]["IGNR"] == b"Jazz\0"
    assert ffmpeg_tags(path)["genre"] == "Jazz"


def test_an_mp3_named_flac_is_tagged_as_an_mp3_and_keeps_its_name(tmp_path: Path) -> None:
    path = song(tmp_path, "song.mp3").rename(tmp_path / "song.flac")
    checksum = audio_content_sha256(path)
    write_fields(path, written_by_genre_tag(["Jazz"]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.flac"]
    assert MP3(path).tags["TCON"].text == ["Jazz"]
    assert read_file_tags(path).state("genre") == "ours"
    assert ffmpeg_tags(path)["genre"] == "Jazz"
    assert audio_content_sha256(path) == checksum


def test_a_flac_named_mp3_is_tagged_as_a_flac_and_keeps_its_name(tmp_path: Path) -> None:
    path = song(tmp_path, "song.flac").rename(tmp_path / "song.mp3")
    checksum = audio_content_sha256(path)
    write_fields(path, written_by_genre_tag(["Jazz"]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.mp3"]
    assert FLAC(path)["GENRE"] == ["Jazz"]
    assert ffmpeg_tags(path)["genre"] == "Jazz"
    assert audio_content_sha256(path) == checksum


def test_a_file_that_is_no_audio_whatever_its_name_is_still_refused(tmp_path: Path) -> None:
    from tagger.library.tagfiles import TagWriteError

    path = tmp_path / "notes.mp3"
    path.write_bytes(np.arange(4096, dtype=np.uint8).tobytes())
    with pytest.raises(TagWriteError, match="cannot read its tags"):
        write_fields(path, {"genre": ["Jazz"]})
