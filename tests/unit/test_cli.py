"""The CLI through real processes: JSON output, one-line errors, and the same flags on the tool script."""

import json
import subprocess
import sys


def mindcode(*args):
    return subprocess.run([sys.executable, "-m", "mindcode", *args], capture_output=True, text=True)


def test_env_json():
    result = mindcode("env", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report["backends"]) == {"ascend", "gpu"}
    for backend in report["backends"].values():
        assert backend["available"] is True and backend["device"] in ("CPU", "Ascend") or backend["device_count"]
    assert report["backends"]["ascend"]["versions"]["mindspore"]
    assert report["backends"]["gpu"]["versions"]["torch"]


def test_env_human_summary():
    result = mindcode("env")
    assert result.returncode == 0
    assert "ascend  available" in result.stdout and "gpu     available" in result.stdout


def test_error_is_one_line_and_exit_1(tmp_path):
    result = mindcode("convert-weight", "--input_path", str(tmp_path / "nope"), "--output_path", str(tmp_path / "x.ckpt"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"mindcode convert-weight: error: {tmp_path / 'nope'}/config.json: "
                                                  "missing (an HF checkpoint directory needs its config.json)"]


def test_debug_shows_the_traceback(tmp_path):
    result = mindcode("convert-weight", "--input_path", str(tmp_path), "--output_path", "x.ckpt", "--debug")
    assert result.returncode == 1 and "Traceback" in result.stderr


def test_unknown_verb_and_model_are_usage_errors():
    assert mindcode("fly").returncode == 2
    result = mindcode("convert-weight", "--model", "gpt2", "--input_path", "a", "--output_path", "b")
    assert result.returncode == 2 and "invalid choice: 'gpt2'" in result.stderr


def test_tool_script_has_the_same_flags():
    result = subprocess.run([sys.executable, "tools/convert_weight/convert_weight.py", "--help"],
                            capture_output=True, text=True)
    assert result.returncode == 0
    for flag in ("--model", "--input_path", "--output_path", "--dtype"):
        assert flag in result.stdout
