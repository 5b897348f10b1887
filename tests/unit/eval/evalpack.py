"""The project's own small HumanEvalPack-shaped problem set: two problems per language (``add``, ``is_palindrome``),
each with a canonical and a buggy solution, plus samples of every kind the evaluator must tell apart: correct, wrong,
not compiling, looping, and hostile (reading a secret, leaving a process behind, forking without end, exhausting
memory). Nothing is downloaded; the shapes follow HumanEvalPack's fields and each language's test style."""

from __future__ import annotations

RUST_USES = ("use std::{slice::Iter, cmp::{max, self}, mem::replace, collections::{HashSet, HashMap}, ops::Index, "
             "ascii::AsciiExt};\nuse rand::Rng;\nuse regex::Regex;\nuse md5;\nuse std::any::{Any, TypeId};\n")
GO_SETUP = 'package main\n\nimport (\n    "testing"\n    "github.com/stretchr/testify/assert"\n)\n'

# per language: (declaration of add, its doc-commented prompt, canonical body, buggy body, test) and the same for
# is_palindrome; bodies complete the declaration.
ADD = {
    "python": ("def add(x: int, y: int) -> int:\n",
               'def add(x: int, y: int) -> int:\n    """Add two numbers.\n    >>> add(2, 3)\n    5\n    """\n',
               "    return x + y\n", "    return x - y\n",
               "\n\ndef check(add):\n    assert add(2, 3) == 5\n    assert add(-1, 1) == 0\n    assert add(0, 7) == 7\n\n"
               "check(add)\n"),
    "js": ("const add = (x, y) => {\n", "/* Add two numbers.\n  >>> add(2, 3)\n  5\n  */\nconst add = (x, y) => {\n",
           "  return x + y;\n};\n", "  return x - y;\n};\n",
           "const testAdd = () => {\n  console.assert(add(2, 3) === 5)\n  console.assert(add(-1, 1) === 0)\n}\n\n"
           "testAdd()\n"),
    "java": ("import java.util.*;\nimport java.lang.*;\n\nclass Solution {\n    public int add(int x, int y) {\n",
             "import java.util.*;\nimport java.lang.*;\n\nclass Solution {\n    /**\n    Add two numbers.\n    >>> add(2, 3)"
             "\n    5\n     */\n    public int add(int x, int y) {\n",
             "        return x + y;\n    }\n}", "        return x - y;\n    }\n}",
             "public class Main {\n    public static void main(String[] args) {\n        Solution s = new Solution();\n"
             "        List<Boolean> correct = Arrays.asList(\n                s.add(2, 3) == 5,\n"
             "                s.add(-1, 1) == 0\n        );\n        if (correct.contains(false)) {\n"
             "            throw new AssertionError();\n        }\n    }\n}"),
    "go": ("\nfunc Add(x int, y int) int {\n", "\n// Add two numbers.\n// >>> Add(2, 3)\n// 5\nfunc Add(x int, y int) int {\n",
           "    return x + y\n}\n", "    return x - y\n}\n",
           "func TestAdd(t *testing.T) {\n    assert := assert.New(t)\n    assert.Equal(5, Add(2, 3))\n"
           "    assert.Equal(0, Add(-1, 1))\n}\n"),
    "cpp": ("#include<stdio.h>\nusing namespace std;\nint add(int x,int y){\n",
            "/*\nAdd two numbers.\n>>> add(2, 3)\n5\n*/\n#include<stdio.h>\nusing namespace std;\nint add(int x,int y){\n",
            "    return x+y;\n}\n", "    return x-y;\n}\n",
            "#undef NDEBUG\n#include<assert.h>\nint main(){\n    assert (add(2, 3) == 5);\n    assert (add(-1, 1) == 0);\n}\n"),
    "rust": ("\n" + RUST_USES + "\nfn add(x:i32, y:i32) -> i32{\n",
             "fn main(){}\n\n" + RUST_USES + "\n/*\n Add two numbers.\n >>> add(2, 3)\n 5\n*/\nfn add(x:i32, y:i32) -> i32{\n",
             "    return x + y;\n}\n", "    return x - y;\n}\n",
             "\n#[cfg(test)]\nmod tests {\n    use super::*;\n\n    #[test]\n    fn test_add() {\n"
             "        assert!(add(2, 3) == 5);\n        assert!(add(-1, 1) == 0);\n    }\n}\n"),
}
PALINDROME = {
    "python": ("def is_palindrome(text: str) -> bool:\n",
               'def is_palindrome(text: str) -> bool:\n    """Whether text reads the same backwards.\n    >>> '
               "is_palindrome('aba')\n    True\n    \"\"\"\n",
               "    return text == text[::-1]\n", "    return text == text[1:]\n",
               "\n\ndef check(is_palindrome):\n    assert is_palindrome('aba')\n    assert not is_palindrome('ab')\n"
               "    assert is_palindrome('')\n\ncheck(is_palindrome)\n"),
    "js": ("const isPalindrome = (text) => {\n",
           "/* Whether text reads the same backwards.\n  >>> isPalindrome('aba')\n  true\n  */\n"
           "const isPalindrome = (text) => {\n",
           "  return text === text.split('').reverse().join('');\n};\n", "  return text.length > 0;\n};\n",
           "const testIsPalindrome = () => {\n  console.assert(isPalindrome('aba') === true)\n"
           "  console.assert(isPalindrome('ab') === false)\n  console.assert(isPalindrome('') === true)\n}\n\n"
           "testIsPalindrome()\n"),
    "java": ("import java.util.*;\nimport java.lang.*;\n\nclass Solution {\n    public boolean isPalindrome(String text) {\n",
             "import java.util.*;\nimport java.lang.*;\n\nclass Solution {\n    /**\n    Whether text reads the same "
             "backwards.\n     */\n    public boolean isPalindrome(String text) {\n",
             "        return new StringBuilder(text).reverse().toString().equals(text);\n    }\n}",
             "        return text.length() > 0;\n    }\n}",
             "public class Main {\n    public static void main(String[] args) {\n        Solution s = new Solution();\n"
             "        List<Boolean> correct = Arrays.asList(\n                s.isPalindrome(\"aba\"),\n"
             "                !s.isPalindrome(\"ab\"),\n                s.isPalindrome(\"\")\n        );\n"
             "        if (correct.contains(false)) {\n            throw new AssertionError();\n        }\n    }\n}"),
    "go": ('import (\n    "strings"\n)\n\nfunc IsPalindrome(text string) bool {\n',
           'import (\n    "strings"\n)\n\n// Whether text reads the same backwards.\nfunc IsPalindrome(text string) bool {\n',
           '    runes := strings.Split(text, "")\n    for i := 0; i < len(runes)/2; i++ {\n'
           '        if runes[i] != runes[len(runes)-1-i] {\n            return false\n        }\n    }\n'
           '    return true\n}\n',
           '    return len(strings.TrimSpace(text)) > 0\n}\n',
           'func TestIsPalindrome(t *testing.T) {\n    assert := assert.New(t)\n    assert.Equal(true, IsPalindrome("aba"))'
           '\n    assert.Equal(false, IsPalindrome("ab"))\n    assert.Equal(true, IsPalindrome(""))\n}\n'),
    "cpp": ("#include<stdio.h>\n#include<string>\nusing namespace std;\nbool is_palindrome(string text){\n",
            "/*\nWhether text reads the same backwards.\n*/\n#include<stdio.h>\n#include<string>\nusing namespace std;\n"
            "bool is_palindrome(string text){\n",
            "    return string(text.rbegin(), text.rend()) == text;\n}\n", "    return text.size() > 0;\n}\n",
            "#undef NDEBUG\n#include<assert.h>\nint main(){\n    assert (is_palindrome(\"aba\") == true);\n"
            "    assert (is_palindrome(\"ab\") == false);\n    assert (is_palindrome(\"\") == true);\n}\n"),
    "rust": ("\n" + RUST_USES + "\nfn is_palindrome(text: String) -> bool{\n",
             "fn main(){}\n\n" + RUST_USES + "\n/*\n Whether text reads the same backwards.\n*/\n"
             "fn is_palindrome(text: String) -> bool{\n",
             "    return text.chars().rev().collect::<String>() == text;\n}\n", "    return text.len() > 0;\n}\n",
             "\n#[cfg(test)]\nmod tests {\n    use super::*;\n\n    #[test]\n    fn test_is_palindrome() {\n"
             "        assert!(is_palindrome(\"aba\".to_string()) == true);\n"
             "        assert!(is_palindrome(\"ab\".to_string()) == false);\n"
             "        assert!(is_palindrome(\"\".to_string()) == true);\n    }\n}\n"),
}
DOCSTRINGS = {"add": "Add two numbers.", "is_palindrome": "Whether text reads the same backwards."}
PACK_NAMES = {"python": "Python", "js": "JavaScript", "java": "Java", "go": "Go", "cpp": "C++", "rust": "Rust"}
ENTRY = {"add": {"go": "Add"}, "is_palindrome": {"js": "isPalindrome", "java": "isPalindrome", "go": "IsPalindrome"}}

# Bodies of ``add`` (after its declaration) for the other kinds; {secret} is a file the sample must not read.
KINDS = {
    "python": {
        "compile_error": "    return x +\n",
        "loop": "    while True:\n        pass\n",
        "read_secret": "    raise ValueError(open('{secret}').read())\n",
        "left_running": "    import subprocess\n    subprocess.Popen(['/bin/sleep', '{sleep}'], start_new_session=True)\n"
                        "    return x + y\n",
    },
    "js": {
        "compile_error": "  return x +;\n};\n",
        "loop": "  while (true) {}\n};\n",
        "read_secret": "  console.log(require('fs').readFileSync('{secret}', 'utf8'));\n  return x + y;\n};\n",
        "left_running": "  require('child_process').spawn('/bin/sleep', ['{sleep}'], {detached: true}).unref();\n"
                        "  return x + y;\n};\n",
    },
    "java": {
        "compile_error": "        return x + ;\n    }\n}",
        "loop": "        while (true) {}\n    }\n}",
        "read_secret": "        try { System.out.println(new String(java.nio.file.Files.readAllBytes("
                       "java.nio.file.Paths.get(\"{secret}\")))); } catch (Exception e) { throw new RuntimeException(e); }"
                       "\n        return x + y;\n    }\n}",
        "left_running": "        try { new ProcessBuilder(\"/bin/sleep\", \"{sleep}\").start(); } catch (Exception e) {}\n"
                        "        return x + y;\n    }\n}",
    },
    "go": {
        "compile_error": "    return x +\n}\n",
        "loop": "    for {\n    }\n}\n",
        "read_secret": "    data, err := os.ReadFile(\"{secret}\")\n    if err != nil {\n        panic(err)\n    }\n"
                       "    panic(string(data))\n}\n",
        "left_running": "    exec.Command(\"/bin/sleep\", \"{sleep}\").Start()\n    return x + y\n}\n",
    },
    "cpp": {
        "compile_error": "    return x+;\n}\n",
        "loop": "    while (true) {}\n}\n",
        "read_secret": "    FILE* f = fopen(\"{secret}\", \"r\");\n    if (!f) return -1;\n    char buf[64] = {0};\n"
                       "    fread(buf, 1, 63, f);\n    fprintf(stderr, \"%s\", buf);\n    return x+y;\n}\n",
        "left_running": "    if (fork() == 0) { setsid(); execl(\"/bin/sleep\", \"sleep\", \"{sleep}\", (char*)0); }\n"
                        "    return x+y;\n}\n",
        "fork_bomb": "    while (true) { fork(); }\n}\n",
        "memory_hog": "    size_t n = (size_t)16 << 30;\n    char* p = (char*)malloc(n);\n    if (!p) return -1;\n"
                      "    memset(p, 1, n);\n    return x+y;\n}\n",
    },
    "rust": {
        "compile_error": "    return x + ;\n}\n",
        "loop": "    loop {}\n}\n",
        "read_secret": "    panic!(\"{}\", std::fs::read_to_string(\"{secret}\").unwrap());\n}\n",
        "left_running": "    std::process::Command::new(\"/bin/sleep\").arg(\"{sleep}\").spawn().unwrap();\n    return x + y;\n}\n",
    },
}
# the imports a hostile body needs, put in front of the declaration
HOSTILE_IMPORTS = {("go", "read_secret"): 'import (\n    "os"\n)\n', ("go", "left_running"): 'import (\n    "os/exec"\n)\n',
                   ("go", "exit_during_test"): 'import (\n    "syscall"\n)\n',
                   ("go", "exit_before_tests"): 'import (\n    "syscall"\n)\n',
                   ("go", "verdict_on_every_descriptor"): 'import (\n    "os"\n)\n',
                   **{("cpp", kind): "#include<unistd.h>\n#include<cstdlib>\n"
                      for kind in ("left_running", "fork_bomb", "memory_hog")}}
# Bodies of ``add``'s declaration (after their HOSTILE_IMPORTS) that forge a pass where the verdict is the program's exit status (and, for
# JavaScript, its silence): bigcode's harness, the program and its test in one process. ``FOOLED_BY_EXIT_STATUS``:
# which do; the others attack the split's own channels.
FORGERIES = {
    "js": {
        "exit_during_test": "  process.exit(0);\n};\n",
        "exit_after_loading": "  return x - y;\n};\nprocess.exit(0);\n",
        "asserts_silenced": "  return x - y;\n};\nconsole.assert = () => {};\n",
        "output_dropped_exit_forced": "  return x - y;\n};\nprocess.stdout.write = process.stderr.write = () => true;\n"
                                      "process.on('exit', () => { process.exitCode = 0; });\n",
        "verdict_on_every_descriptor": "  const fs = require('fs');\n  for (let fd = 0; fd < 64; fd++) {\n"
                                       "    try { fs.writeSync(fd, 'passed\\n'); } catch (e) {}\n  }\n"
                                       "  return x - y;\n};\n",
    },
    "cpp": {
        "exit_during_test": "    exit(0);\n}\n",
        "exit_before_main": "    return x-y;\n}\nstatic int forged = (exit(0), 0);\n",
        "main_replaced": "    return x-y;\n}\nint  main() { return 0; }\n#define main never_called\n",
        "asserts_disabled": "    return x-y;\n}\n#define NDEBUG\n#define assert(e) ((void)0)\n",
    },
    "java": {
        "exit_during_test": "        System.exit(0);\n        return 0;\n    }\n}",
        "exit_in_static_init": "        return x - y;\n    }\n    static {\n        System.exit(0);\n    }\n}",
        "exit_status_rewritten": "        return x - y;\n    }\n    static {\n        Runtime.getRuntime().addShutdownHook("
                                 "new Thread(() -> Runtime.getRuntime().halt(0)));\n    }\n}",
        "verdict_on_every_descriptor": "        for (int fd = 0; fd < 64; fd++) {\n            try (java.io.FileOutputStream o = "
                                       "new java.io.FileOutputStream(\"/proc/self/fd/\" + fd)) {\n"
                                       "                o.write(\"R\\0\\0\\0\\1V\".getBytes());\n"
                                       "            } catch (Exception e) {}\n        }\n        return x - y;\n    }\n}",
    },
    "rust": {
        "exit_during_test": "    std::process::exit(0);\n}\n",
        "exit_before_tests": "    x - y\n}\n#[used]\n#[link_section = \".init_array\"]\nstatic FORGED: extern \"C\" fn() = {\n"
                             "    extern \"C\" fn forged() {\n        std::process::exit(0)\n    }\n    forged\n};\n",
        "asserts_disabled": "    x - y\n}\nmacro_rules! assert {\n    ($($t:tt)*) => {};\n}\n",
        "verdict_on_every_descriptor": "    use std::io::Write;\n    use std::os::unix::io::FromRawFd;\n    for fd in 0..64 {\n"
                                       "        let mut f = unsafe { std::fs::File::from_raw_fd(fd) };\n"
                                       "        let _ = f.write_all(b\"\\x01\\x00\\x00\\x00V\");  // a frame: a reply with no value\n"
                                       "        std::mem::forget(f);\n    }\n    x - y\n}\n",
    },
    "go": {  # syscall.Exit, unlike os.Exit, is not caught by the testing package
        "exit_during_test": "    syscall.Exit(0)\n    return 0\n}\n",
        "exit_before_tests": "    return x - y\n}\n\nfunc init() {\n    syscall.Exit(0)\n}\n",
        "tests_replaced": "    return x - y\n}\n\nfunc TestMain(m *testing.M) {}\n",
        "verdict_on_every_descriptor": "    for fd := 0; fd < 64; fd++ {\n"
                                       "        os.NewFile(uintptr(fd), \"\").Write([]byte(\"PASS\\nok\\n\"))\n    }\n"
                                       "    return x - y\n}\n",
    },
}
FOOLED_BY_EXIT_STATUS = {"js": ("exit_during_test", "exit_after_loading", "asserts_silenced",
                                "output_dropped_exit_forced"),
                         "cpp": ("exit_during_test", "exit_before_main", "main_replaced"),
                         "go": ("exit_during_test", "exit_before_tests", "tests_replaced"),
                         "java": ("exit_during_test", "exit_in_static_init", "exit_status_rewritten"),
                         "rust": ("exit_during_test", "exit_before_tests", "asserts_disabled")}
EXPECTED = {"correct": "passed", "wrong": "failed", "compile_error": "compile_error", "loop": "timed_out"}


def problems(language: str) -> list[dict]:
    """The language's problems in HumanEvalPack's shape."""
    rows = []
    for number, (name, table) in enumerate((("add", ADD), ("is_palindrome", PALINDROME))):
        declaration, prompt, canonical, buggy, test = table[language]
        row = {"task_id": f"{PACK_NAMES[language]}/{number}", "prompt": prompt, "declaration": declaration,
               "canonical_solution": canonical, "buggy_solution": buggy, "test": test,
               "entry_point": ENTRY[name].get(language, name), "docstring": DOCSTRINGS[name]}
        if language == "go":
            row["test_setup"], row["import"] = GO_SETUP, ""
        rows.append(row)
    return rows


def samples(language: str, secret: str, sleep: str) -> list[dict]:
    """Samples of every kind, each with the outcome it must get (``expect``) in HumanEvalFix form (completions of
    the declaration)."""
    add, palindrome = problems(language)
    rows = []
    for problem in (add, palindrome):
        rows.append({"task_id": problem["task_id"], "completion": problem["canonical_solution"], "kind": "correct"})
        rows.append({"task_id": problem["task_id"], "completion": problem["buggy_solution"], "kind": "wrong"})
    for kind, body in KINDS[language].items():
        solution = HOSTILE_IMPORTS.get((language, kind), "") + add["declaration"] + body.replace(
            "{secret}", secret).replace("{sleep}", sleep)
        rows.append({"task_id": add["task_id"], "solution": solution, "kind": kind})
    return rows
