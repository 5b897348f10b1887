"""mindcode's core and the registry import no framework; choosing a backend imports only its own."""

import subprocess
import sys

FRAMEWORKS = ("mindspore", "mindformers", "torch", "transformers")


def imported_frameworks(code: str) -> list[str]:
    probe = f"{code}\nimport sys\nprint(','.join(m for m in {FRAMEWORKS!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    return [m for m in out.strip().split(",") if m]


def test_import_mindcode_imports_no_framework():
    code = "\n".join([
        "import mindcode, mindcode.cli, mindcode.presets, mindcode.tokenizer, mindcode.env",
        "import mindcode.convert.keymap, mindcode.convert.safetensors_io, mindcode.convert.hf_to_ms",
        "import backends, backends.base",
    ])
    assert imported_frameworks(code) == []


def test_env_report_imports_no_mindspore():
    # gpu's device count needs torch; the ascend side must answer from metadata and /dev alone.
    assert "mindspore" not in imported_frameworks("import mindcode.env; mindcode.env.environment()")


def test_gpu_backend_never_imports_mindspore():
    code = "from backends import get_backend; get_backend('gpu').info()"
    found = imported_frameworks(code)
    assert "mindspore" not in found and "mindformers" not in found


def test_ascend_backend_never_imports_torch():
    code = "from backends import get_backend; b = get_backend('ascend'); b.info(); b.load_checkpoint"
    assert imported_frameworks(code) == []
