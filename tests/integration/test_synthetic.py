"""OSS-Instruct and Magpie generation over real HTTP: against a canned OpenAI-compatible endpoint (parsing and
resume), and against `mindcode serve` itself (whose tiny random model's replies are counted as rejects)."""

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


class Canned(BaseHTTPRequestHandler):
    calls: list = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Canned.calls.append((self.path, body))
        if self.path.endswith("/chat/completions"):
            content = body["messages"][-1]["content"]
            if "inspiration" in content:
                text = ("[Problem Description]\nWrite `double(x)` returning 2x.\n[Solution]\n```python\n"
                        "def double(x):\n    return 2 * x\n```" if "GOOD" in content else "no sections here")
            else:
                text = f"Answer to: {content}"
            reply = {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}
        else:
            reply = {"choices": [{"index": 0, "text": f" Write a function number {body['seed']}."}]}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def endpoint():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Canned)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def mindcode(*args):
    return subprocess.run([sys.executable, "-m", "mindcode", "data", *args, "--json"], capture_output=True,
                          text=True, cwd=ROOT)


def test_oss_instruct_parses_counts_and_resumes(endpoint, tmp_path):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps({"seed": s, "lang": "python"}) + "\n" for s in ["GOOD a = 1", "bad", "GOOD b"]))
    out = tmp_path / "oss.jsonl"
    result = mindcode("oss-instruct", "generate", "--endpoint", endpoint, "--seeds", str(seeds), "--output_path", str(out))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["written"] == 2 and summary["skipped_by_reason"] == {"no [Problem Description]/[Solution] sections": 1}
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[0]["problem"].startswith("Write `double(x)`") and "def double" in rows[0]["solution"]
    # The rows feed the converter unchanged.
    assert mindcode("oss-instruct", "--data_path", str(out), "--output_path", str(tmp_path / "pairs.jsonl")).returncode == 0
    # Resume: a torn last line is dropped and only missing indices are asked again.
    out.write_text(out.read_text() + '{"index": 2, "tru')
    Canned.calls.clear()
    summary = json.loads(mindcode("oss-instruct", "generate", "--endpoint", endpoint, "--seeds", str(seeds),
                                  "--output_path", str(out)).stdout)
    assert summary["already_done"] == 2 and len(Canned.calls) == 1  # only the rejected seed is retried
    assert all(json.loads(line) for line in out.read_text().splitlines())


def test_magpie_uses_the_pre_query_template(endpoint, tmp_path):
    Canned.calls.clear()
    out = tmp_path / "magpie.jsonl"
    summary = json.loads(mindcode("magpie", "generate", "--endpoint", endpoint, "--n", "3", "--output_path",
                                  str(out)).stdout)
    assert summary["written"] == 3
    completion_calls = [body for path, body in Canned.calls if path.endswith("/v1/completions")]
    assert completion_calls[0]["prompt"] == "[INST] " and completion_calls[0]["stop"] == ["[/INST]"]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[1] == {"index": 1, "instruction": "Write a function number 1.",
                       "response": "Answer to: Write a function number 1."}
