"""``genlab codec encode|decode``, ``genlab train codec``, ``genlab data codec`` and ``genlab convert --from encodec``.

Every input is checked before any work: the audio file (exists, is audio, has samples), the bitrate (one the codec
has), the output path (writable, a format we can write). Problems end in one line and exit code 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..errors import GenlabError

OUT_FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16"), ".ogg": ("OGG", "VORBIS")}


def register(commands) -> None:
    codec = commands.top.add_parser("codec", help="audio <-> codec tokens (the neural audio codec)")
    sub = codec.add_subparsers(dest="codec_command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("encode", help="audio file -> .tokens (codes + header)")
    p.add_argument("input", help="audio file: any rate and channel count (resampled and mixed down)")
    p.add_argument("--kbps", type=float, required=True, help="bitrate: sets how many codebooks are kept")
    p.add_argument("--out", required=True, help="the .tokens file to write")
    p.add_argument("--model", default="speech-codec", help="bundled codec name or checkpoint directory")
    p.add_argument("--chunk", type=float, default=30.0, help="seconds per streamed window (default 30)")
    p.set_defaults(handler=_encode)

    p = sub.add_parser("decode", help=".tokens -> audio file (wav, flac or ogg)")
    p.add_argument("input", help="a .tokens file written by `genlab codec encode`")
    p.add_argument("--out", required=True, help="the audio file to write (.wav, .flac or .ogg)")
    p.add_argument("--model", default=None, help="codec to decode with (default: the one named in the file)")
    p.add_argument("--chunk", type=float, default=30.0, help="seconds per streamed window (default 30)")
    p.set_defaults(handler=_decode)

    from ..cli import add_train_command

    add_train_command(commands, "codec", help="train the neural audio codec (EnCodec-style, with a GAN)",
                      presets=["speech-codec", "speech-codec-gan", "encodec-24khz", "tiny"], default="speech-codec",
                      handler=_train)

    p = commands.data.add_parser("codec", help="build the codec's speech corpus from installed Debian packages")
    p.add_argument("--rate", type=int, default=16000, help="sample rate (default 16000)")
    p.add_argument("--rebuild", action="store_true")
    p.set_defaults(handler=_data)

    commands.converters["encodec"] = _convert
    commands.tour_sections.append(tour_section)


def _check_writable(path: Path) -> None:
    if path.is_dir():
        raise GenlabError(f"{path}: is a directory; give a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        existed = path.exists()
        with open(path, "ab"):
            pass
        if not existed:
            path.unlink()
    except OSError as e:
        raise GenlabError(f"cannot write {path}: {e.strerror}") from None


def _encode(args) -> None:
    from ..data.audio import audio_duration
    from .api import Streaming, encode_file, load, n_q_for_kbps
    from .tokens import write_tokens

    out = Path(args.out)
    _check_writable(out)
    audio_duration(args.input)  # the input is audio before the model loads
    if args.chunk < 1:
        raise GenlabError(f"--chunk {args.chunk:g}: use at least 1 second")
    loaded = load(args.model)
    n_q = n_q_for_kbps(loaded.cfg, args.kbps)
    say = lambda line: print(line, file=sys.stderr)  # noqa: E731
    codes, info = encode_file(args.input, loaded, n_q, Streaming(args.chunk), say=say)
    cfg = loaded.cfg
    header = {"model": loaded.name, "model_hash": loaded.weights_hash, "sample_rate": cfg.sample_rate,
              "frame_rate": cfg.frame_rate, "hop_length": cfg.hop_length, "n_q": n_q,
              "codebook_size": cfg.codebook_size, "kbps": cfg.kbps(n_q), **info}
    write_tokens(out, codes, header)
    print(f"wrote {out}: {codes.shape[1]} frames x {n_q} codebooks ({cfg.kbps(n_q):g} kbps, "
          f"{info['n_samples'] / cfg.sample_rate:.2f} s at {cfg.sample_rate} Hz)")


def _decode(args) -> None:
    import soundfile as sf

    from .api import Streaming, check_codes, decode_stream, load
    from .tokens import read_tokens

    out = Path(args.out)
    if out.suffix.lower() not in OUT_FORMATS:
        raise GenlabError(f"{out}: write .wav, .flac or .ogg")
    _check_writable(out)
    codes, header = read_tokens(args.input)
    loaded = load(args.model or header["model"])
    if loaded.weights_hash != header["model_hash"]:
        raise GenlabError(f"{args.input}: made by codec weights {header['model_hash']}, but {loaded.name} has "
                          f"{loaded.weights_hash}; pass --model with the codec that wrote it")
    cfg = loaded.cfg
    if (header["sample_rate"], header["hop_length"], header["codebook_size"]) != (
            cfg.sample_rate, cfg.hop_length, cfg.codebook_size):
        raise GenlabError(f"{args.input}: header's rate/hop/codebook size do not match {loaded.name}")
    check_codes(codes, cfg, args.input)
    fmt, subtype = OUT_FORMATS[out.suffix.lower()]
    provenance = {"genlab": "codec decode", "tokens": Path(args.input).name, "model": loaded.name,
                  "model_hash": loaded.weights_hash, "n_q": header["n_q"], "kbps": header.get("kbps"),
                  "source": header.get("source")}
    tmp = out.parent / f".{out.name}.tmp"
    remaining = header["n_samples"]
    with sf.SoundFile(tmp, "w", cfg.sample_rate, 1, subtype=subtype, format=fmt) as f:
        f.comment = json.dumps(provenance)
        f.software = "genlab"
        for block in decode_stream(loaded.codec, codes, Streaming(args.chunk)):
            block = block[:remaining].clip(-1, 1)
            f.write(block)
            remaining -= len(block)
    tmp.replace(out)
    print(f"wrote {out}: {header['n_samples'] / cfg.sample_rate:.2f} s at {cfg.sample_rate} Hz "
          f"({header['n_q']} codebooks, {cfg.kbps(header['n_q']):g} kbps)")


def _train(args) -> None:
    from ..cli import count_parameters, train_preset
    from .task import PRESETS, CodecTask

    train_preset(args, "codec", PRESETS, lambda run: CodecTask(run.model),
                 lambda task: f"{count_parameters(task.codec)} parameters, {task.meta['train_seconds'] / 3600:.1f} h "
                 f"of speech, phases {', '.join(getattr(p, 'name', p) for p in task.phases)}")


def _data(args) -> None:
    from .data import build

    corpus = build(args.rate, rebuild=args.rebuild)
    m = corpus.manifest
    print(json.dumps({"dir": str(corpus.dir), "seconds": m["seconds"], "speakers": len(m["speakers"]),
                      "test_speakers": m["test_speakers"], "missing": m["missing"]}, indent=2))


def _convert(src: str, out: str, args) -> None:
    from .convert import convert_dir

    print(f"wrote genlab codec checkpoint {convert_dir(src, out)}")


def tour_section(out_dir: Path, quick: bool) -> str:
    from .tour import tour_section as section

    return section(out_dir, quick)
