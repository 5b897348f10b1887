"""Synthetic instruction data from any OpenAI-compatible endpoint (``mindcode serve`` included).

- OSS-Instruct (Magicoder's method): each seed code snippet inspires a self-contained problem and its solution; the
  reply must carry a ``[Problem Description]`` and a ``[Solution]`` section.
- Magpie: the model gets only its chat template's text before a user turn (e.g. ``[INST] ``) as a raw completion,
  writes a user instruction itself, and then answers it through the chat endpoint.

Both are resumable: each finished row is appended to the output as one JSON line (and flushed); a re-run skips
the indices already there (a torn last line from a crash is dropped first). Replies that cannot be used are
counted by reason and written to ``OUTPUT.rejects.jsonl``.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from mindcode.terminal import progress_bar

from mindcode.data.io import read_records
from mindcode.errors import MindcodeError

OSS_INSTRUCT_PROMPT = (
    "You write excellent programming exercises together with their reference solutions.\n\n"
    "Use the code snippet below only as inspiration and invent a new, high-quality programming problem. Answer in "
    "exactly two sections, headed [Problem Description] and [Solution].\n\n"
    "Code snippet for inspiration:\n```{lang}\n{seed}\n```\n\n"
    "[Problem Description] must be completely self-contained: state every piece of context, every input and output "
    "format and every constraint a reader needs, assuming only general programming knowledge.\n"
    "[Solution] must be a complete and correct solution of the problem you stated."
)
SECTIONS = re.compile(r"\[Problem Description\]\s*(.*?)\s*\[Solution\]\s*(.*)", re.DOTALL)


class Endpoint:
    def __init__(self, url: str, model: str = "mindcode", timeout: float = 600.0, retries: int = 3):
        self.url, self.model, self.timeout, self.retries = url.rstrip("/"), model, timeout, retries

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps({"model": self.model, **body}).encode()
        for attempt in range(self.retries):
            request = urllib.request.Request(self.url + path, data=data, headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as error:
                if error.code < 500 or attempt == self.retries - 1:
                    raise MindcodeError(f"{self.url}{path}: HTTP {error.code}: {error.read().decode()[:300]}") from None
            except (urllib.error.URLError, TimeoutError) as error:
                if attempt == self.retries - 1:
                    raise MindcodeError(f"{self.url}{path}: {error}") from None
            time.sleep(2 ** attempt)
        raise AssertionError("unreachable")

    def chat(self, messages: list[dict[str, str]], **params: Any) -> str:
        return self.post("/chat/completions", {"messages": messages, **params})["choices"][0]["message"]["content"]

    def complete(self, prompt: str, **params: Any) -> str:
        return self.post("/completions", {"prompt": prompt, **params})["choices"][0]["text"]


def _resume(path: Path) -> set[int]:
    """Indices already written; a torn last line (a crash mid-write) is cut off."""
    if not path.exists():
        return set()
    text = path.read_text()
    lines = text.split("\n")
    done, keep = set(), []
    for line in lines:
        if not line.strip():
            continue
        try:
            done.add(json.loads(line)["index"])
            keep.append(line)
        except (ValueError, KeyError):
            break
    if len("\n".join(keep)) + (1 if keep else 0) != len(text):
        path.write_text("".join(line + "\n" for line in keep))
    return done


class _Output:
    def __init__(self, path: Path):
        self.path, self.rejects = path, Counter()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.done = _resume(path)
        self.file = path.open("a", encoding="utf-8")
        self.reject_file = Path(f"{path}.rejects.jsonl").open("a", encoding="utf-8")
        self.written = 0

    def add(self, row: dict[str, Any]) -> None:
        self.file.write(json.dumps(row, ensure_ascii=False) + "\n")
        self.file.flush()
        os.fsync(self.file.fileno())
        self.written += 1

    def reject(self, index: int, reason: str, reply: str) -> None:
        self.rejects[reason] += 1
        self.reject_file.write(json.dumps({"index": index, "reason": reason, "reply": reply}, ensure_ascii=False) + "\n")
        self.reject_file.flush()

    def close(self) -> dict[str, Any]:
        self.file.close()
        self.reject_file.close()
        return {"output_path": str(self.path), "written": self.written, "already_done": len(self.done),
                "skipped": sum(self.rejects.values()), "skipped_by_reason": dict(self.rejects)}


def oss_instruct(endpoint: Endpoint, seeds_path: str, output_path: str, max_tokens: int = 1024,
                 temperature: float = 0.0, progress: bool = True) -> dict[str, Any]:
    seeds = []
    for record in read_records(Path(seeds_path)):
        seed = record.data.get("seed", record.data.get("content"))
        if not isinstance(seed, str) or not seed.strip():
            raise MindcodeError(f"{record.where()}, field 'seed': missing or empty")
        seeds.append((record.index, seed, record.data.get("lang", "")))
    out = _Output(Path(output_path))
    for index, seed, lang in progress_bar(seeds, desc="oss-instruct", disable=not progress):
        if index in out.done:
            continue
        prompt = OSS_INSTRUCT_PROMPT.format(seed=seed, lang=lang)
        reply = endpoint.chat([{"role": "user", "content": prompt}], max_tokens=max_tokens, temperature=temperature,
                              seed=index)
        match = SECTIONS.search(reply)
        if not match or not match.group(1).strip() or not match.group(2).strip():
            out.reject(index, "no [Problem Description]/[Solution] sections", reply)
            continue
        out.add({"index": index, "seed": seed, "lang": lang, "problem": match.group(1).strip(),
                 "solution": match.group(2).strip()})
    return {"seeds": len(seeds), **out.close()}


def magpie(endpoint: Endpoint, count: int, output_path: str, template: str = "llama-2", max_tokens: int = 512,
           temperature: float = 1.0, progress: bool = True) -> dict[str, Any]:
    from mindcode.data.templates import skeleton

    pieces = skeleton(template, ("user", "assistant"), None)
    pre_query = pieces[0][0] + pieces[1][0]  # the template's text before a user message
    end_of_query = (pieces[1][1] + pieces[2][0]).strip() or None  # what ends it: where the instruction stops
    out = _Output(Path(output_path))
    for index in progress_bar(range(count), desc="magpie", disable=not progress):
        if index in out.done:
            continue
        stop = [end_of_query] if end_of_query else []
        instruction = endpoint.complete(pre_query, max_tokens=max_tokens, temperature=temperature, seed=index,
                                        stop=stop).strip()
        if not instruction:
            out.reject(index, "empty instruction", instruction)
            continue
        response = endpoint.chat([{"role": "user", "content": instruction}], max_tokens=max_tokens, temperature=0,
                                 seed=index).strip()
        if not response:
            out.reject(index, "empty response", response)
            continue
        out.add({"index": index, "instruction": instruction, "response": response})
    return {"requested": count, "template": template, **out.close()}
