"""Segments and wall time of Whisper base on the 5-minute benchmark file (``asr_speed.build_file``), in each mode,
for whichever genlab is first on ``PYTHONPATH``: the A/B check that a refactor keeps Whisper's output identical and
its speed. Run it on two source trees in turn (e.g. ``git worktree add /tmp/old OLD``)::

    for i in 1 2; do for tree in /tmp/old /work/main; do
      OMP_NUM_THREADS=2 PYTHONPATH=$tree/src python benchmarks/asr_segments.py /tmp/segs-$(basename $tree)-$i.json \\
        fp32-1-1,int8-1-1; done; done

Modes are ``COMPUTE-BEAM-BATCH`` (fp32|int8, beam size, windows decoded at once); the default is all six the core
refactor was checked in. Prints ``mode seconds segments`` per mode and writes every segment to the JSON file.
"""

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import asr_speed  # noqa: E402

import genlab  # noqa: E402
from genlab.asr import load  # noqa: E402

MODES = ["fp32-1-1", "fp32-5-1", "int8-1-1", "int8-5-1", "fp32-1-8", "fp32-5-8"]


def main() -> None:
    out_path = Path(sys.argv[1])
    modes = sys.argv[2].split(",") if len(sys.argv) > 2 else MODES
    audio, _ = asr_speed.build_file()
    out, pipes = {"genlab": genlab.__file__}, {}
    for mode in modes:
        compute, beam, batch = mode.split("-")
        if compute not in pipes:
            pipes[compute] = load("base", int8=compute == "int8")
        pipe = pipes[compute]
        pipe.transcribe(audio[:16000 * 5], language="en")  # warm-up
        t0 = time.perf_counter()
        r = pipe.transcribe(audio, language="en", beam_size=int(beam), vad=True, batch_size=int(batch))
        out[mode] = {"seconds": time.perf_counter() - t0, "segments": [(s.start, s.end, s.text) for s in r.segments]}
        print(mode, round(out[mode]["seconds"], 2), len(r.segments), flush=True)
        out_path.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
