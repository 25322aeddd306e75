"""Exit 0 when a run directory's latest checkpoint has reached the run's configured steps, else 1 (the GPU scripts
ask it whether to train, resume or export):  python3 scripts/gpu/finished.py runs/NAME"""

import json
import sys
from pathlib import Path

run = Path(sys.argv[1])
steps = json.loads((run / "train_config.json").read_text())["steps"]
latest = (run / "checkpoints" / "latest").read_text().strip()
sys.exit(0 if int(latest.split("_")[-1]) >= steps else 1)
