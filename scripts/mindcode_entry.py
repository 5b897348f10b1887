"""mindcode's CLI as a script file, for launchers that start a script path (msrun, torchrun).

    bash scripts/msrun_launcher.sh "mindcode train --config configs/ascend/tiny_cpu.yaml" 2
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from a checkout without installing

from mindcode.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
