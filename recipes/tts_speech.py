"""Recipe for the bundled ``speech-tts`` voice bundle: speaker encoder, acoustic model, vocoder.

    python recipes/tts_speech.py data       # the espeak corpus with phoneme durations (genlab[speech]), ~2 min
    python recipes/tts_speech.py speaker    # GE2E speaker encoder on real + espeak voices (needs `genlab data codec`)
    python recipes/tts_speech.py acoustic   # FastSpeech with d-vector voices (needs the speaker run)
    python recipes/tts_speech.py vocoder    # Vocos on the corpus audio (``genlab train vocoder`` also has HiFi-GAN)
    python recipes/tts_speech.py speaker-eer  # the speaker run's equal error rate on the held-out real speakers,
                                              # into benchmarks/results/tts_speaker_eer.json
    python recipes/tts_speech.py export     # the three runs' weights, float16 -> src/genlab/assets/speech-tts/
    python recipes/tts_speech.py eval       # benchmarks/tts_eval.py and benchmarks/watermark_eval.py on the export
    python recipes/tts_speech.py bf16-check # ~10 minutes: 160 acoustic steps in fp32 and bf16, the curves compared
    python recipes/tts_speech.py smoke      # ~5 minutes (loaded machine): 2 steps of each stage, runs/*-smoke, to
                                            # runs/speech-tts-smoke (a bundle for `genlab speak --model`)

Every stage resumes when rerun (the shared trainer's exact resume). Data: 2,000 training utterances (one or two
held-apart sentences each) read by 51 espeak US-English voices (voice 0, plain ``en-us``, is the built-in voice,
a quarter of the corpus), 100 held-out sentences in voice 0; durations from espeak's phoneme events
(genlab/tts/data.py). The speaker encoder also hears the ~60 real speakers of the codec corpus; its six held-out
speakers give the EER.

Parameters: acoustic 5.0M (d=192, 4+4 transformer layers, 2 heads), vocoder 0.93M (HiFi-GAN, 128 channels,
upsampling 8-8-2-2), speaker encoder 1.4M (3-layer LSTM 256). Time on 2 CPU cores (AMD EPYC, fp32: bf16 runs at
~0.7 GFLOP/s on this CPU against 49 for fp32, so keep train.precision=fp32 here), from one step of each measured on
one thread while the machine's load average was ~5 (`STEP_SECONDS`): speaker 3.5 s x 6,000 steps, acoustic 9 s x
10,000, vocoder 7 s x 20,000; on two idle threads expect roughly half: ~3 h + ~12 h + ~20 h (measured there on
two idle threads, 2026-12-05: speaker ~1.05 s a step, 1.75 h for its 6,000; acoustic ~2.0 s a step, ~5.6 h).
The vocoder is optional (without ``vocoder/`` the bundle uses Griffin-Lim), so an intelligible bundle needs speaker
+ acoustic. The vocoder figures here are HiFi-GAN's (``genlab train vocoder --preset speech-vocoder``); the recipe's
``vocoder`` stage now trains Vocos instead (preset ``speech-vocos``: 3.6M parameters working at the mel frame rate,
8,000 steps), which has been neither timed nor trained yet. The speaker encoder's equal error rate on the codec
corpus's six held-out speakers (``speaker-eer``): 26.5 % at 6,000 steps.
``smoke`` took 4 min 47 s on the loaded machine (most of it set-up). On the Intel Xeon (AMX) of later sessions,
2 threads, a step took: speaker ~0.8 s, acoustic ~2.5 s in fp32 and ~1.5 s under bf16 autocast, vocoder ~1.45 s
(measured there, 2026-12-04; the full run has not been made): ~1.3 h + ~7 h fp32 + ~8 h. The acoustic stage
trains under bf16 autocast where the CPU has bf16 kernels (not that EPYC): over 160 steps from one seed its loss
curve follows fp32's (2.89 against 2.92 at the end) at 1.48 s a step against 2.30 (``bf16-check``,
benchmarks/results/tts_acoustic_bf16.json), so ~4.1 h. The codec recipe holds those cores until it finishes: one
training at a time.

On a GPU machine (at most 64 MiB in, 10 minutes a call; scripts/gpu/train_tts.sh says how): the machine renders
the espeak corpus itself from ``bash scripts/gpu/pack_tts.sh`` (the espeakng-loader wheel and the corpus's plan,
9.5 MB; the corpus is 600 MB); the speaker stage also carries ``.gpu/cache-codec.tar.xz`` (pack_codec.sh: 33 min
of the codec corpus's real speech, all of its 43 usable training speakers and its 6 held-out ones, 42.9 MB).
One call per stage, in this order, each rerun on the warm machine until its stage has finished::

    STAGES=speaker  TOTAL=560 bash scripts/gpu/train_tts.sh .gpu/tts-data.tar.xz $OUT   # carry both archives
    STAGES=acoustic TOTAL=560 bash scripts/gpu/train_tts.sh .gpu/tts-data.tar.xz $OUT   # + runs/speaker-speech-speaker
    STAGES=vocoder  TOTAL=560 bash scripts/gpu/train_tts.sh .gpu/tts-data.tar.xz $OUT   # + runs/vocoder-speech-vocos

Copy each returned ``run_NAME/`` to ``runs/NAME`` here. The acoustic checkpoint (78 MB) cannot be carried, so that
stage must finish on one warm machine; then ``python recipes/tts_speech.py export`` here (or the script there, when
all three runs are on one machine). Estimated, not measured: 4-8 calls (train_tts.sh gives the arithmetic).
Measured quality of the bundle (speaker 6,000 steps, acoustic 10,000, no vocoder run: Griffin-Lim; ``eval``,
benchmarks/results/tts_eval.json, 30 held-out sentences): Whisper base's WER 0.27, as espeak-ng's (its teacher),
piper's 0.09; clones of six held-out real speakers 0.53 by resemblyzer against a floor of 0.48 and a ceiling of
0.77. The smoke bundle speaks noise (WER ~100 %) and only
proves the plumbing.
"""

import json
import subprocess
import sys
from pathlib import Path

import torch

from genlab.checkpoint import load_checkpoint, save_checkpoint
from genlab.cli import main
from genlab.nn.linear import ONEDNN_BF16

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "runs"
OUT = ROOT / "src" / "genlab" / "assets" / "speech-tts"
STAGES = {  # stage -> (genlab train FAMILY, preset, run dir, overrides)
    "speaker": ("speaker", "speech-speaker", RUNS / "speaker-speech-speaker", ["train.threads=2"]),
    "acoustic": ("tts", "speech-tts", RUNS / "tts-speech-tts",  # bf16 where the CPU has it: see bf16_check
                 ["train.threads=2", f"train.precision={'bf16' if ONEDNN_BF16 else 'fp32'}",
                  f"speaker_encoder={RUNS / 'speaker-speech-speaker'}"]),
    "vocoder": ("vocoder", "speech-vocos", RUNS / "vocoder-speech-vocos", ["train.threads=2"]),
}
KINDS = {"speaker": "tts-speaker", "acoustic": "tts-acoustic", "vocoder": "tts-vocoder"}
# Seconds per training step (batch 16, fp32, one thread, load average ~5 on the 2 shared cores, 2026-12-04):
# batch + forward + backward (+ the discriminator's phase for the vocoder).
STEP_SECONDS = {"speaker": 0.3 + 1.1 + 2.1, "acoustic": 0.03 + 3.3 + 5.5, "vocoder": 0.01 + 2.1 + 2.2 + 3.1}


def train(stage: str, smoke: bool = False) -> int:
    family, preset, run, overrides = STAGES[stage]
    if smoke:
        run = run.with_name(run.name + "-smoke")
        overrides = [o.replace("speaker-speech-speaker", "speaker-speech-speaker-smoke") for o in overrides]
        overrides += ["train.steps=2", "train.ckpt_every=0", "train.log_every=1", "train.eval_every=0",
                      "train.progress=false", "data.train_utterances=40", "data.test_utterances=4"]
    return main(["train", family, "--preset", preset, "--out", str(run), *overrides])


def bf16_check(folder: Path) -> None:
    """Is bf16 autocast safe for the acoustic stage? The same 160 steps (seed 0, warm-up 50) in fp32 and in bf16
    from one speaker encoder (2 steps suffice: the check compares precisions, not voices); the loss curves and the
    seconds a step -> benchmarks/results/tts_acoustic_bf16.json. Reruns resume (a finished run is not redone)."""
    speaker = folder / "speaker-smoke"
    if main(["train", "speaker", "--preset", "speech-speaker", "--out", str(speaker), "train.threads=2",
             "train.steps=2", "train.ckpt_every=0", "train.log_every=1", "train.eval_every=0",
             "train.progress=false"]):
        sys.exit(2)
    curves = {}
    for precision in ("fp32", "bf16"):
        run = folder / f"ac-{precision}"
        if main(["train", "tts", "--preset", "speech-tts", "--out", str(run), f"speaker_encoder={speaker}",
                 "train.threads=2", "train.steps=160", "train.warmup_steps=50", "train.log_every=10",
                 "train.eval_every=0", "train.ckpt_every=0", "train.progress=false", f"train.precision={precision}",
                 "train.seed=0"]):
            sys.exit(2)
        rows = [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "loss_avg" in r]
        curves[precision] = {"step": [r["step"] for r in rows], "loss_avg": [round(r["loss_avg"], 4) for r in rows],
                             "mel_l1": [round(r["mel_l1"], 4) for r in rows],
                             "seconds_per_step": round(rows[-1]["time"] / rows[-1]["step"], 3)}
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from common import write_result

    ratio = curves["fp32"]["seconds_per_step"] / curves["bf16"]["seconds_per_step"]
    print(write_result("tts_acoustic_bf16", {"steps": 160, "seed": 0, "threads": 2, "curves": curves,
                                             "bf16_speedup": round(ratio, 3)}))


def export(runs: dict[str, Path], out: Path) -> None:
    """EMA weights where the run has them (the speaker encoder keeps its plain weights), one checkpoint per part,
    stored in float16 (loaded as float32: 13 MB, not 26); a missing vocoder run is left out (the bundle then uses
    Griffin-Lim)."""
    for stage, run in runs.items():
        if stage == "vocoder" and not run.exists():
            print(f"note: no vocoder run at {run}: the bundle uses Griffin-Lim")
            continue
        ckpt = load_checkpoint(run, kind=KINDS[stage])
        if ckpt.ema is not None:
            model = ckpt.ema if stage == "acoustic" else {f"generator.{k}": v for k, v in ckpt.ema.items()}
        else:
            model = ckpt.model
        model = {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in model.items()}
        meta = {**ckpt.meta, "recipe": "recipes/tts_speech.py", "exported_from": str(ckpt.path),
                "weights": "stored in float16, loaded as float32"}
        save_checkpoint(out / stage, kind=KINDS[stage], config=ckpt.config, model=model, meta=meta)
    print(json.dumps({"exported": str(out)}))


def speaker_eer(run: Path) -> None:
    """The speaker encoder's equal error rate over pairs of clips of the codec corpus's held-out real speakers."""
    from genlab.codec.data import load as load_codec
    from genlab.tts.api import _part
    from genlab.tts.model import SpeakerConfig, SpeakerEncoder
    from genlab.tts.speaker import VoicePool, equal_error_rate
    from genlab.tts.voice import SPEAKER_RATE

    torch.set_num_threads(2)
    pool = VoicePool.build("test", False, load_codec(SPEAKER_RATE), None)
    encoder, weights = _part(run, "tts-speaker", SpeakerEncoder, SpeakerConfig, "encoder.", use_ema=False)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from common import write_result

    result = {"run": str(run), "weights": weights, "held_out": pool.names, "clips_per_speaker": 8,
              "pairs": "every pair of the clips, same speaker against different speakers",
              "eer": round(equal_error_rate(encoder, pool), 4)}
    print(write_result("tts_speaker_eer", result).read_text())


def smoke() -> None:
    import time

    for stage in STAGES:
        t0 = time.perf_counter()
        if train(stage, smoke=True) != 0:
            sys.exit(2)
        print(f"{stage}: 2 steps (with set-up) in {time.perf_counter() - t0:.1f} s")
    export({s: STAGES[s][2].with_name(STAGES[s][2].name + "-smoke") for s in STAGES}, RUNS / "speech-tts-smoke")
    torch.set_num_threads(2)
    sys.exit(main(["speak", "The smoke bundle speaks.", "--model", str(RUNS / "speech-tts-smoke"),
                   "--out", str(RUNS / "speech-tts-smoke" / "hello.wav")]))


if __name__ == "__main__":
    command = sys.argv[1:2]
    if command == ["data"]:
        sys.exit(main(["data", "tts"]))
    elif command and command[0] in STAGES:
        sys.exit(train(command[0]))
    elif command == ["speaker-eer"]:
        speaker_eer(Path(sys.argv[2]) if len(sys.argv) > 2 else STAGES["speaker"][2])
    elif command == ["export"]:
        export({s: STAGES[s][2] for s in STAGES}, OUT)
    elif command == ["eval"]:
        for script in ("tts_eval.py", "watermark_eval.py"):
            subprocess.run([sys.executable, str(ROOT / "benchmarks" / script)], check=True)
    elif command == ["bf16-check"]:
        bf16_check(Path(sys.argv[2]) if len(sys.argv) > 2 else RUNS / "tts-bf16-check")
    elif command == ["smoke"]:
        smoke()
    else:
        sys.exit(__doc__)
