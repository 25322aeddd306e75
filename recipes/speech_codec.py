"""Recipe for the bundled ``speech-codec`` (16 kHz, 50 Hz frames, 12 codebooks of 1024: 1.5 / 3 / 6 kbps): the
frequency-domain codec, an encoder reading STFT log-magnitudes, residual VQ and a Vocos decoder (codec/model.py).

    python recipes/speech_codec.py data      # the speech corpus from Debian packages (scripts/install.d/codec.sh),
                                             # once: ~8.4 h of audio, ~5 min to decode and resample
    python recipes/speech_codec.py train-spectral  # 8,000 steps from scratch (preset speech-codec-spectral)
                                             # -> runs/speech-codec-spectral-export
    python recipes/speech_codec.py train-spectral-gan  # its second stage: 1,000 steps with the discriminator
                                             # (speech-codec-spectral-gan) -> runs/speech-codec-spectral-gan-export
    python recipes/speech_codec.py export    # that stage's EMA codec, float16 -> src/genlab/assets/speech-codec
    python recipes/speech_codec.py eval      # benchmarks/codec_eval.py on the bundle (vs Opus; WER on 30 prompts)

The SEANet codec (waveform encoder and decoder, three stages), measured below and not bundled:

    python recipes/speech_codec.py train     # stages 0, 1 and 2; resumable: rerun to continue
    python recipes/speech_codec.py export-stage1   # stage 1's latest EMA codec -> runs/speech-codec-stage1-export
    python recipes/speech_codec.py train-istft  # a Vocos decoder for stage 2's frozen encoder and codebooks
                                             # -> runs/speech-codec-istft-export
    python recipes/speech_codec.py frequency-trial W   # 600 steps on from stage 1 with EnCodec's frequency loss
                                             # weighted W (0: the control), exported to runs/codec-freq-trial-wW-export
    python recipes/speech_codec.py smoke     # 2 steps of each stage in runs/speech-codec*-smoke (10.8 min beside
                                             # a training on 2 cores)

Stage 0 (preset ``speech-codec-wave``, 350 steps of 8 one-second windows): the waveform L1 alone, with the
quantiser's commitment, which brings in the input's phase. Stage 1 (preset ``speech-codec``, 13,000 steps) starts from
stage 0's weights and adds the multi-scale log-mel and STFT losses, the waveform L1 weighted 50; quantizer dropout
trains every bitrate at once. Stage 2 (preset ``speech-codec-gan``, 4,800 steps) starts from stage 1's EMA weights
and adds EnCodec's multi-scale STFT discriminator (hinge loss, feature matching) as a second trainer phase. The
data are 6.8 hours of speech of 60 people in about 25 languages; six speakers are held out for evaluation
(genlab/codec/data.py).

Time on 2 idle cores of the Intel Xeon of 2026-12-04 (fp32), measured: stage 1 0.54 s a step, stage 2 1.18 s, so
about 2 h for stage 1 and, with stage 2's 4,800 steps (1.03 s a step on 2026-12-05), about 1.4 h for stage 2 (the
earlier estimate, 3.8 s a step, was scaled from a loaded AMD EPYC); stage 0 is not timed
alone (350 steps of the cheapest loss). The first full run had
3,000 steps: with the VQ fixed (commit ce180d4) its quantiser reached 0.2% relative error on the latent at 12
codebooks, but the autoencoder itself was the limit, at a held-out mel distance of 0.53 even unquantised (Opus at
6 kbps: 0.28), so every bitrate scored the same; hence a longer run. The bundled run was set to 20,000 steps and
resumed at step 4,500 with 13,000 (so its cosine schedule jumped from 0.88 to 0.74 of the peak rate there) to fit
the time left for the codec. That run (two stages: the log-mel losses from the start, the waveform L1 weighted 0.1,
PyTorch's default initialisation) learnt magnitudes, not the input's phase: at step 4,500 the held-out output's
STFT coherence with the input was at most 0.22 in every band, and 200 steps with the waveform L1 weighted 10 or 40
left SI-SDR at -35 dB. Two causes, found afterwards with one-off runs from scratch (raw weights, 8 held-out clips,
12 codebooks, constant rate 5e-4):
- the initialisation: the untrained codec's output depended on its input with a standard deviation of 3e-7 against
  0.03 for the whole, so even the waveform L1 alone had taught nothing by step 350 (SI-SDR -58 dB). Each
  convolution now keeps the signal's scale (genlab/codec/model.py), and the waveform L1 alone reaches -2.7 dB by
  step 300;
- the losses: with that initialisation the recipe's old losses still gave -36 dB at step 500 (mel 0.75), and with
  the waveform L1 weighted 100 -31 dB. Starting with the waveform L1 alone for 350 steps, then the losses of stage 1
  above, gave -3.7 dB and mel 0.73 at step 700.
Stages 0 and 1 of this recipe ran on 2026-12-05 (0.46 s a stage-1 step on idle cores; codec_eval_new_stage1.json,
stage 1's EMA at step 13,000: SI-SDR +0.44 dB at 6 kbps, mel 0.299, PESQ 1.30, WER 1.1-2.9: the phase is learnt,
the speech not yet intelligible). Stage 2 was first set to 1,200 steps; there (codec_eval_gan_1200.json, 1.03 s a
step alone) Whisper base's WER was 0.91 at 6 kbps, 0.97 at 3 and 1.21 at 1.5 (stage 1: 1.21, 1.12, 2.88; Opus 0.27),
PESQ 1.31, mel 0.295: better heard, not yet intelligible, so stage 2 was set to 4,800 steps and resumed (its rate
is constant, so the extension changes nothing in the steps already run). At 4,800 (codec_eval_gan_4800.json) mel
0.293 and PESQ 1.31 at 6 kbps had hardly moved, and WER was worse: 2.25 at 6 kbps, 1.02 at 3, 3.53 at 1.5 (Whisper
writes loops over some clips). In a one-off check of 16 training clips (not kept in benchmarks/results) the decoded
speech was 4-5 dB low in every band from 500 Hz to 4 kHz at step ~3,400 (stage 1: 6-7 dB): the log-mel L1 does not
weigh the spectral peaks, and more adversarial steps did not bring them back. Measured since on the 60 held-out clips
(``codec_eval.py``'s band levels: codec_eval_stage1_bands.json, codec_eval_gan_4800_bands.json), at 6 kbps the
bands from 500 Hz to 4 kHz come out 4.9-5.4 dB low after stage 1 and 3.0-4.3 dB low after stage 2, against 1.0-1.3
dB for Opus at 6 kbps. EnCodec's frequency loss, tried for 600 steps on from stage 1 (``frequency-trial``, beside a
control run without it; codec_eval_freq_trial_w*.json), lifts those bands by 1.3-1.4 dB at weight 10,000 (0.2-0.4 at
1,000) but adds 3.6 dB above 4 kHz, and the speech stays unintelligible (WER 1.01 at 6 kbps against the control's
1.08): it is not the missing piece.

A new decoder for the same tokens (``train-istft``, 2026-12-06): Vocos's (codec/model.py, ISTFTDecoder), learnt for
4,000 steps on stage 2's frozen encoder and codebooks with stage 1's losses (codec_eval_istft_4000.json, the
command of codec_eval_gan_4800.json on runs/speech-codec-istft-export). At 6 kbps: mel 0.278 (stage 2: 0.293), PESQ
1.32 (1.31), WER 0.97 (2.25; 0.90 at 3 kbps, 2.88 at 1.5), and the bands from 500 Hz to 2 kHz still 3.6-4.8 dB low
at every bitrate. A fresh decoder of another kind halves the WER but does not make the speech intelligible: that
points to what the encoder's frames keep (``train-spectral`` tries an encoder that reads the spectrum itself).

The frequency-domain codec (``train-spectral``, 2026-12-06; 8,000 steps, 0.31 s a step on 2 idle cores of the AMD
EPYC by its metrics' clock; codec_eval_spectral_8000.json, the same command on runs/speech-codec-spectral-export): an
encoder reading the STFT log-magnitudes and the Vocos decoder, trained from scratch on the log-mel and STFT losses.
At 6 kbps mel 0.227, PESQ 1.37, WER 0.76 (CER 0.31), each the best of any run so far, but 2.56 at 3 kbps and 1.74 at
1.5 (Whisper loops), and the bands from 500 Hz to 2 kHz still 2.6-3.5 dB low: not intelligible yet. Its second stage
with the discriminator (``train-spectral-gan``, constant rate) first ran for 1,750 steps of a planned 6,000: there
Whisper no longer looped at 3 and 1.5 kbps (WER 0.76 / 0.78 / 0.85 at 6 / 3 / 1.5 kbps, PESQ 1.39 at 6 kbps,
codec_eval_spectral_gan_1750.json); that run was lost with the machine it ran on.

The bundle (2026-12-06, a new machine): both stages again, the first in 8,000 steps (weights not bit-identical to the
earlier run's), the second stopped at 1,000 steps (2.8 s a step on 2 idle cores of the AMD EPYC, the time the
session had). codec_eval.json (``eval``): WER 0.68 / 0.76 / 0.92 at 6 / 3 / 1.5 kbps (Opus at 6 kbps 0.27, the
original audio 0.19), PESQ 1.36 / 1.35 / 1.30 (Opus 2.22), mel 0.235 / 0.236 / 0.247 (Opus 0.317). Understood at
every bitrate, not yet well: more adversarial steps, which helped the low bitrates most, are the next thing to try.

On one GPU, in a call of at most 10 minutes to a machine that receives at most 64 MiB and has no data packages:

    bash scripts/gpu/pack_codec.sh                   # here: a balanced 33-minute part of the corpus, 43 MB
    TOTAL=560 bash scripts/gpu/train_codec.sh .gpu/cache-codec.tar.xz $OUT/k      # there, carrying that archive

runs the three stages with the commands of train() below on the part (its manifest, and so the model's meta, says it
is 33 of the 405 minutes), stops before TOTAL (rerun on the same machine to resume), exports, and sends everything
back as results.tgz.part-*; scripts/gpu/train_codec.sh says what to carry and the time to expect.
Measured on the full run of 2026-12-05, made with the old two-stage recipe (benchmarks/results/codec_eval.json, 60
clips of the six held-out speakers): at 6 kbps a mel distance of 0.29 against Opus's 0.32 (Opus at its lowest
setting, 11 kbps measured on these short clips), but SI-SDR -33 dB against 6.9, PESQ 1.14 against 2.22, and Whisper
base's WER on 30 Italian prompts 1.2-3.0 against Opus's 0.27 (original audio 0.19): the output has the input's
spectrum without its phase and is not intelligible, so this run is not bundled. Stage 1 alone
(codec_eval_stage1.json): mel 0.28, PESQ 1.15, WER 1.0-1.1.
"""

import json
import subprocess
import sys
from pathlib import Path

import torch

from genlab.checkpoint import load_checkpoint, save_checkpoint, weights_hash
from genlab.cli import main

ROOT = Path(__file__).resolve().parent.parent
STAGE0 = ROOT / "runs" / "speech-codec-wave"
STAGE1 = ROOT / "runs" / "speech-codec"
STAGE2 = ROOT / "runs" / "speech-codec-gan"
ISTFT = ROOT / "runs" / "speech-codec-istft"
SPECTRAL = ROOT / "runs" / "speech-codec-spectral"
SPECTRAL_GAN = ROOT / "runs" / "speech-codec-spectral-gan"
OUT = ROOT / "src" / "genlab" / "assets" / "speech-codec"
COMMON = ["train.threads=2"]


def train(smoke: bool = False) -> int:
    s0, s1, s2 = (STAGE0, STAGE1, STAGE2)
    if smoke:
        s0, s1, s2 = (s.with_name(f"{s.name}-smoke") for s in (s0, s1, s2))
    short = ["train.steps=2", "train.batch_size=2", "train.eval_every=2", "train.ckpt_every=0",
             "model.data.eval_clips=2"] if smoke else []
    rc = main(["train", "codec", "--preset", "speech-codec-wave", "--out", str(s0), *COMMON, *short])
    if rc:
        return rc
    rc = main(["train", "codec", "--preset", "speech-codec", "--out", str(s1), f"model.init_from={s0}", *COMMON,
               *short])
    if rc:
        return rc
    return main(["train", "codec", "--preset", "speech-codec-gan", "--out", str(s2), f"model.init_from={s1}",
                 *COMMON, *short])


def _train_and_export(run: Path, preset: str, *overrides: str) -> int:
    """``genlab train codec --preset preset`` into ``run``, then its EMA codec exported to runs/<run>-export."""
    rc = main(["train", "codec", "--preset", preset, "--out", str(run), *overrides, "train.progress=false", *COMMON])
    if rc == 0:
        export(run, run.with_name(run.name + "-export"))
    return rc


def train_istft() -> int:
    """A Vocos decoder (preset ``speech-codec-istft``) learnt on stage 2's frozen encoder and codebooks."""
    return _train_and_export(ISTFT, "speech-codec-istft", f"model.init_from={STAGE2}")


def train_spectral(gan: bool = False) -> int:
    """The frequency-domain codec (preset ``speech-codec-spectral``: STFT encoder, Vocos decoder, the speech codec's
    codebooks) from scratch, or (``gan``) its second stage with the discriminator from the first's weights
    (``speech-codec-spectral-gan``)."""
    if gan:
        return _train_and_export(SPECTRAL_GAN, "speech-codec-spectral-gan", f"model.init_from={SPECTRAL}")
    return _train_and_export(SPECTRAL, "speech-codec-spectral")


def frequency_trial(weight: float) -> int:
    """Stage 1's codec trained on for 600 steps at stage 2's constant rate with EnCodec's frequency loss weighted
    ``weight`` (genlab.codec.loss.frequency_loss; 0 is the control run), then exported beside it for codec_eval."""
    run = ROOT / "runs" / f"codec-freq-trial-w{weight:g}"
    rc = main(["train", "codec", "--preset", "speech-codec", "--out", str(run), f"model.init_from={STAGE1}",
               f"model.loss.frequency={weight:g}", "train.steps=600", "train.lr=2e-4", "train.schedule=constant",
               "train.warmup_steps=0", "train.eval_every=0", "train.ckpt_every=300", "train.progress=false", *COMMON])
    if rc == 0:
        export(run, run.with_name(run.name + "-export"))
    return rc


def export(source: Path = SPECTRAL_GAN, out: Path = OUT) -> None:
    """``source``'s EMA codec (its latest checkpoint), in float16, to ``out``."""
    ckpt = load_checkpoint(source, kind="codec")
    ema = ckpt.ema if ckpt.ema is not None else {k.removeprefix("codec."): v for k, v in ckpt.model.items()
                                                  if k.startswith("codec.")}
    half = {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in ema.items()}  # ~11 MB, not 21
    loaded = {k: v.float() if v.is_floating_point() else v for k, v in half.items()}  # what genlab runs
    model = {f"codec.{k}": v for k, v in half.items()}
    meta = {**ckpt.meta, "recipe": "recipes/speech_codec.py", "exported_from": str(ckpt.path.relative_to(ROOT)),
            "weights": f"EMA of {source.name}, stored in float16, loaded as float32 (the hash is of those)",
            "weights_hash": weights_hash(loaded)}
    save_checkpoint(out, kind="codec", config={"codec": ckpt.config["codec"]}, model=model, meta=meta)
    print(json.dumps({"exported": str(out), "step": ckpt.meta.get("step"), "weights_hash": meta["weights_hash"]}))


if __name__ == "__main__":
    torch.set_num_threads(2)
    command = sys.argv[1:]
    if command == ["data"]:
        sys.exit(main(["data", "codec"]))
    elif command == ["train"]:
        sys.exit(train())
    elif command == ["smoke"]:
        sys.exit(train(smoke=True))
    elif command == ["export"]:
        export()
    elif command == ["train-spectral"]:
        sys.exit(train_spectral())
    elif command == ["train-spectral-gan"]:
        sys.exit(train_spectral(gan=True))
    elif command == ["train-istft"]:
        sys.exit(train_istft())
    elif command == ["export-stage1"]:  # stage 1's EMA codec so far, to be measured before stage 2 ends
        export(STAGE1, ROOT / "runs" / "speech-codec-stage1-export")
    elif len(command) == 2 and command[0] == "frequency-trial":
        sys.exit(frequency_trial(float(command[1])))
    elif command == ["eval"]:
        sys.exit(subprocess.call([sys.executable, str(ROOT / "benchmarks" / "codec_eval.py"), "--model",
                                  "speech-codec", "--n", "60", "--seed", "0", "--wer-n", "30"]))
    else:
        sys.exit(__doc__)
