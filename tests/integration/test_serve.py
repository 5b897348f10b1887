"""`mindcode serve` over real HTTP on 127.0.0.1: completions, chat, streaming, errors, concurrent batching."""

import json
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from mindcode.presets import PRESETS
from mindcode.tokenizer import TINY_TOKENIZER
from tests.conftest import write_hf_checkpoint

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    hf = write_hf_checkpoint(tmp_path_factory.mktemp("serve") / "hf", PRESETS["tiny"], seed=2)
    proc = subprocess.Popen([sys.executable, "-m", "mindcode", "serve", "--config", "configs/gpu/tiny_cpu.yaml",
                             "--checkpoint", str(hf), "--tokenizer", str(TINY_TOKENIZER), "--port", "0",
                             "--batch_size", "8", "--max_queue", "16"],
                            cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    url = None
    for line in proc.stderr:
        match = re.search(r"on (http://127\.0\.0\.1:\d+/v1)", line)
        if match:
            url = match.group(1)
            break
    assert url, "the server did not start"
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def call(url, path, body=None, raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url + path, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


def test_models(server):
    status, _, body = call(server, "/models")
    assert status == 200 and json.loads(body)["data"][0]["id"] == "mindcode"


def test_completion_and_chat(server):
    status, _, body = call(server, "/completions", {"prompt": "def add(a, b):", "max_tokens": 8, "temperature": 0})
    reply = json.loads(body)
    assert status == 200 and reply["object"] == "text_completion" and reply["usage"]["completion_tokens"] <= 8
    assert isinstance(reply["choices"][0]["text"], str)
    status, _, body = call(server, "/chat/completions", {"messages": [{"role": "user", "content": "Hi"}],
                                                         "max_tokens": 6, "temperature": 0})
    reply = json.loads(body)
    assert status == 200 and reply["choices"][0]["message"]["role"] == "assistant"


def test_streaming_reassembles_the_same_text(server):
    body = {"prompt": "x = 1", "max_tokens": 10, "temperature": 0}
    _, _, plain = call(server, "/completions", body)
    status, headers, stream = call(server, "/completions", {**body, "stream": True})
    assert status == 200 and headers["Content-Type"] == "text/event-stream"
    events = [line[6:] for line in stream.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    text = "".join(json.loads(e)["choices"][0]["text"] for e in events[:-1])
    assert text == json.loads(plain)["choices"][0]["text"]


@pytest.mark.parametrize("raw, status, message", [
    (b"{not json", 400, "not valid JSON"),
    (b'{"max_tokens": 5}', 400, "'prompt' must be"),
    (b'{"prompt": "a", "temperature": 9}', 400, "'temperature' must be within"),
    (b'{"prompt": "a", "max_tokens": "ten"}', 400, "'max_tokens' must be an integer"),
])
def test_bad_requests_get_clear_4xx(server, raw, status, message):
    code, _, body = call(server, "/completions", raw=raw)
    assert code == status and message in json.loads(body)["error"]["message"]
    assert call(server, "/nope", {"a": 1})[0] == 404


def test_concurrent_requests_are_batched(server):
    results = []

    def one(i):
        results.append(call(server, "/completions", {"prompt": f"value_{i} =", "max_tokens": 12, "temperature": 0}))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(status == 200 for status, _, _ in results)
    assert max(int(headers["X-Mindcode-Batch-Size"]) for _, headers, _ in results) > 1
    # Batched answers equal the unbatched ones.
    alone = json.loads(call(server, "/completions", {"prompt": "value_3 =", "max_tokens": 12, "temperature": 0})[2])
    batched = [json.loads(b) for _, _, b in results]
    texts = {r["choices"][0]["text"] for r in batched}
    assert alone["choices"][0]["text"] in texts
