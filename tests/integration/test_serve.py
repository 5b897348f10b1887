"""`mindcode serve` over real HTTP on 127.0.0.1, with the `openai` client as the reference client: completions,
chat, incremental streaming, continuous batching (a short request overtakes a long one; seeds hold under batching),
per-request errors, logprobs, disconnects, time-outs; and the ascend backend's server (KV-cached) giving the gpu
backend's greedy text."""

import json
import re
import subprocess
import sys
import threading
import time
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
def checkpoint(tmp_path_factory):
    return write_hf_checkpoint(tmp_path_factory.mktemp("serve") / "hf", PRESETS["tiny"], seed=2)


def start(checkpoint, *extra, config="configs/gpu/tiny_cpu.yaml"):
    proc = subprocess.Popen([sys.executable, "-m", "mindcode", "serve", "--config", config,
                             "--checkpoint", str(checkpoint), "--tokenizer", str(TINY_TOKENIZER), "--port", "0",
                             "--batch_size", "8", "--max_queue", "16", *extra],
                            cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    url = None
    for line in proc.stderr:
        match = re.search(r"on (http://127\.0\.0\.1:\d+/v1)", line)
        if match:
            url = match.group(1)
            break
    assert url, "the server did not start"
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    return proc, url


@pytest.fixture(scope="module")
def server(checkpoint):
    proc, url = start(checkpoint)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def client(server):
    import openai

    return openai.OpenAI(base_url=server, api_key="none", max_retries=0, timeout=120)


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


def test_streamed_chunks_arrive_as_they_are_decoded(client):
    start_time = time.perf_counter()
    arrivals, text = [], ""
    stream = client.completions.create(model="mindcode", prompt="def f(x):", max_tokens=300, temperature=0,
                                       stream=True)
    for chunk in stream:
        arrivals.append(time.perf_counter() - start_time)
        text += chunk.choices[0].text
    total = time.perf_counter() - start_time
    assert len(arrivals) > 50 and arrivals[0] < total / 3, (arrivals[0], total)
    plain = client.completions.create(model="mindcode", prompt="def f(x):", max_tokens=300, temperature=0)
    assert text == plain.choices[0].text


def test_a_short_request_overtakes_a_long_one_and_seeds_hold_under_batching(client):
    alone = client.completions.create(model="mindcode", prompt="import os", max_tokens=20, temperature=0.9,
                                      seed=7).choices[0].text
    done = {}

    def run(name, **kwargs):
        done[name] = (client.completions.create(model="mindcode", **kwargs), time.perf_counter())

    long = threading.Thread(target=run, args=("long",), kwargs={"prompt": "class A:", "max_tokens": 450,
                                                                  "temperature": 0})
    long.start()
    time.sleep(0.3)  # the long one is decoding
    short = threading.Thread(target=run, args=("short",), kwargs={"prompt": "x =", "max_tokens": 4, "temperature": 0})
    seeded = threading.Thread(target=run, args=("seeded",), kwargs={"prompt": "import os", "max_tokens": 20,
                                                                      "temperature": 0.9, "seed": 7})
    short.start()
    seeded.start()
    for t in (long, short, seeded):
        t.join()
    assert done["short"][1] < done["long"][1]  # it joined the running batch and left it first
    assert done["long"][0].usage.completion_tokens == 450 and done["short"][0].usage.completion_tokens <= 4
    assert done["seeded"][0].choices[0].text == alone  # the same RNG stream alone and batched


def test_a_bad_request_fails_alone_while_its_batch_mate_succeeds(client, server):
    import openai

    results = {}

    def good():
        results["good"] = client.completions.create(model="mindcode", prompt="a = 1", max_tokens=200, temperature=0)

    thread = threading.Thread(target=good)
    thread.start()
    time.sleep(0.2)
    with pytest.raises(openai.BadRequestError, match="leaves no room in the model's 512 positions"):
        client.completions.create(model="mindcode", prompt="x " * 600, max_tokens=5)
    thread.join()
    assert results["good"].usage.completion_tokens == 200
    with pytest.raises(openai.NotFoundError, match="the model 'gpt-4' does not exist"):
        client.completions.create(model="gpt-4", prompt="a", max_tokens=2)
    with pytest.raises(openai.BadRequestError, match="unsupported field 'echo'"):
        client.completions.create(model="mindcode", prompt="a", max_tokens=2, echo=True)
    code, _, body = call(server, "/completions", raw=b'{"prompt": "a", "max_tokens": Infinity}')
    assert code == 400 and "non-finite number Infinity" in json.loads(body)["error"]["message"]
    code, _, body = call(server, "/completions", {"prompt": ["a"] * 17, "max_tokens": 2})
    assert code == 400 and "at most 16 per request" in json.loads(body)["error"]["message"]


def test_logprobs_in_openai_shape(client):
    reply = client.completions.create(model="mindcode", prompt="def", max_tokens=5, temperature=0, logprobs=3)
    lp = reply.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == 5 and len(lp.text_offset) == 5
    assert all(len(top) == 3 and max(top.values()) == pytest.approx(t) for top, t in zip(lp.top_logprobs,
                                                                                         lp.token_logprobs))
    chat = client.chat.completions.create(model="mindcode", messages=[{"role": "user", "content": "Hi"}],
                                          max_tokens=4, temperature=0, logprobs=True, top_logprobs=2)
    content = chat.choices[0].logprobs.content
    assert len(content) == chat.usage.completion_tokens and all(len(c.top_logprobs) == 2 for c in content)
    assert all(c.logprob <= 0 for c in content)


def test_a_client_that_goes_away_frees_its_rows(client, server):
    stream = client.completions.create(model="mindcode", prompt="while True:", max_tokens=450, temperature=0,
                                       stream=True)
    next(iter(stream))
    stream.close()  # the client disconnects after the first chunk
    time.sleep(0.5)
    status, headers, _ = call(server, "/completions", {"prompt": "y =", "max_tokens": 30, "temperature": 0})
    assert status == 200 and headers["X-Mindcode-Batch-Size"] == "1"  # the abandoned request is gone


def test_requests_past_the_time_out_get_408(checkpoint):
    proc, url = start(checkpoint, "--request_timeout", "0.3")
    try:
        status, _, body = call(url, "/completions", {"prompt": "for i in", "max_tokens": 480, "temperature": 0})
        assert status == 408 and "time-out of 0.3 s" in json.loads(body)["error"]["message"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_ascend_server_decodes_like_the_gpu_one(checkpoint, client):
    import openai

    proc, url = start(checkpoint, config="configs/ascend/tiny_cpu.yaml")
    try:
        ascend = openai.OpenAI(base_url=url, api_key="none", max_retries=0, timeout=300)
        results = {}

        def one(name, prompt, tokens):
            results[name] = ascend.completions.create(model="mindcode", prompt=prompt, max_tokens=tokens,
                                                      temperature=0).choices[0].text

        threads = [threading.Thread(target=one, args=("long", "def g(y):", 60)),
                   threading.Thread(target=one, args=("short", "z =", 8))]
        threads[0].start()
        time.sleep(0.5)
        threads[1].start()
        for t in threads:
            t.join()
        for name, prompt, tokens in (("long", "def g(y):", 60), ("short", "z =", 8)):
            assert results[name] == client.completions.create(model="mindcode", prompt=prompt, max_tokens=tokens,
                                                              temperature=0).choices[0].text
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_an_api_key_is_required_when_set(checkpoint):
    """`--api-key` (or MINDCODE_API_KEY), as vLLM's server has it: the openai client with the key is served; a
    request without it, or with another, gets 401."""
    import openai

    proc, url = start(checkpoint, "--api-key", "sekret-1")
    try:
        status, headers, body = call(url, "/models")
        assert status == 401 and json.loads(body)["error"]["type"] == "authentication_error"
        assert headers.get("WWW-Authenticate") == "Bearer"
        status, _, _ = call(url, "/completions", {"prompt": "x", "max_tokens": 2})
        assert status == 401
        wrong = openai.OpenAI(base_url=url, api_key="sekret-2", max_retries=0, timeout=60)
        with pytest.raises(openai.AuthenticationError):
            wrong.completions.create(model="mindcode", prompt="def f():", max_tokens=2)
        right = openai.OpenAI(base_url=url, api_key="sekret-1", max_retries=0, timeout=60)
        reply = right.completions.create(model="mindcode", prompt="def f():", max_tokens=4, temperature=0)
        assert reply.choices[0].text is not None and reply.usage.completion_tokens <= 4
    finally:
        proc.terminate()
        proc.wait(timeout=10)
