"""Writing transcripts: plain text, SubRip (.srt), WebVTT (.vtt), tab-separated (.tsv, milliseconds) and JSON."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from ..errors import GenlabError


def _stamp(t: float, comma: bool, always_hours: bool = True) -> str:
    ms = int(round(t * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    sep = "," if comma else "."
    hours = f"{h:02d}:" if always_hours or h else ""
    return f"{hours}{m:02d}:{s:02d}{sep}{ms:03d}"


def to_txt(result) -> str:
    return "".join(s.text.strip() + "\n" for s in result.segments)


def to_srt(result) -> str:
    blocks = [f"{i}\n{_stamp(s.start, True)} --> {_stamp(s.end, True)}\n{s.text.strip()}\n"
              for i, s in enumerate(result.segments, start=1)]
    return "\n".join(blocks)


def to_vtt(result) -> str:
    lines = ["WEBVTT\n"]
    for s in result.segments:
        lines.append(f"{_stamp(s.start, False, False)} --> {_stamp(s.end, False, False)}\n{s.text.strip()}\n")
    return "\n".join(lines)


def to_tsv(result) -> str:
    rows = ["start\tend\ttext"]
    rows += [f"{round(s.start * 1000)}\t{round(s.end * 1000)}\t{s.text.strip().replace(chr(9), ' ')}"
             for s in result.segments]
    return "\n".join(rows) + "\n"


def to_json(result) -> str:
    return json.dumps(asdict(result), ensure_ascii=False, indent=1) + "\n"


WRITERS = {"txt": to_txt, "srt": to_srt, "vtt": to_vtt, "tsv": to_tsv, "json": to_json}


def write_outputs(result, audio_path, out_dir: Path, formats: list[str]) -> list[Path]:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GenlabError(f"{out_dir}: cannot create output directory ({e.strerror})") from None
    written = []
    for fmt in formats:
        path = out_dir / f"{Path(audio_path).stem}.{fmt}"
        path.write_text(WRITERS[fmt](result), encoding="utf-8")
        written.append(path)
    return written
