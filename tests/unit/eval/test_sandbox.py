"""Each protection of the sandbox, attacked by a program that would succeed without it."""

import os
import socket
import textwrap
import threading
import time

import pytest

from mindcode.eval.pool import SandboxPool


@pytest.fixture(scope="module")
def pool():
    with SandboxPool(2) as p:
        yield p


def run(pool, program, timeout=2.0, **limits):
    out = {}
    pool.run([{"id": 0, "program": textwrap.dedent(program), "timeout": timeout, "limits": limits}],
             lambda i, r: out.update(r))
    return out


def test_protections_are_reported(pool):
    p = pool.protections
    assert p["network"] != "none" and p["filesystem_writes"].startswith("landlock")
    assert p["process_group_kill"] is True and "address space" in p["rlimits"]


def test_honest_program_passes_and_failures_fail(pool):
    assert run(pool, "import math, collections, fractions\nassert math.gcd(12, 8) == 4")["result"] == "passed"
    assert run(pool, "assert 1 + 1 == 3, 'wrong'")["result"] == "failed: wrong"


def test_memory_limit(pool):
    result = run(pool, "x = bytearray(2 << 30)\nassert len(x) > 0", memory_mb=512)
    assert not result["passed"] and result["result"].startswith("failed")


def test_timeout_kills_the_whole_process_group(pool, tmp_path):
    marker = tmp_path / "alive"
    os.chmod(tmp_path, 0o777)
    program = f"""
    import subprocess, sys
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3); open({str(marker)!r}, 'w').write('x')"])
    while True:
        pass
    """
    start = time.monotonic()
    result = run(pool, program, timeout=1.0)
    assert result["result"] == "timed out" and time.monotonic() - start < 2.5
    time.sleep(3.5)
    assert not marker.exists()  # the sleeping grandchild died with its group


def test_process_limit(pool):
    program = """
    import os
    pids = []
    for _ in range(200):
        pids.append(os.fork())
        if pids[-1] == 0:
            import time; time.sleep(5); os._exit(0)
    """
    result = run(pool, program, processes=16)
    assert not result["passed"] and "Resource temporarily unavailable" in result["result"]


def test_file_size_limit(pool):
    result = run(pool, "open('big.bin', 'wb').write(b'x' * (8 << 20))", file_size_mb=1)
    assert not result["passed"]


def test_open_files_limit(pool):
    result = run(pool, "fs = [open('f%d' % i, 'w') for i in range(500)]", open_files=32)
    assert not result["passed"] and "Too many open files" in result["result"]


def test_no_network(pool):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    accepted = []
    threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
    program = f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
    result = run(pool, program)
    server.close()
    assert not result["passed"] and not accepted


def test_no_writes_outside_its_directory(pool, tmp_path):
    os.chmod(tmp_path, 0o777)  # even a world-writable directory is out of reach
    target = tmp_path / "escaped.txt"
    result = run(pool, f"open({str(target)!r}, 'w').write('x')")
    assert not result["passed"] and not target.exists()
    assert run(pool, "open('inside.txt', 'w').write('x')\nassert open('inside.txt').read() == 'x'")["passed"]


def test_stdin_is_closed_and_output_is_capped(pool):
    assert run(pool, "input()")["result"] == "failed: EOF when reading a line"
    result = run(pool, "print('x' * (64 << 20))", file_size_mb=1)
    assert not result["passed"]


@pytest.mark.parametrize("program", [
    "import os\nos._exit(0)",
    "import sys\nsys.exit(0)",
    "exit()",
    "raise SystemExit(0)",
    "import os, signal\nos.kill(os.getpid(), signal.SIGTERM)",
    "import os\nif os.fork() != 0:\n    os._exit(0)",
])
def test_ending_the_interpreter_early_never_passes(pool, program):
    assert not run(pool, program)["passed"]


@pytest.mark.parametrize("program", [
    "import builtins\nbuiltins.len = lambda x: 3\nassert len([]) == 3",
    "import sys\nsys.settrace(lambda *a: None)",
])
def test_tampering_never_passes(pool, program):
    result = run(pool, program)
    assert not result["passed"] and ("builtin" in result["result"] or "hook" in result["result"])
