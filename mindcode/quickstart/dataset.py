"""The quickstart's embedded data, written by the project: alpaca-style Python tasks and Java -> C# pairs.

Deterministic (no randomness beyond fixed cycles), so every run trains on the same bytes.
"""

from __future__ import annotations

# (instruction, function name, argument list, body) for small Python tasks; names and constants vary per item.
PY_TASKS = [
    ("Write a Python function {name} that returns the sum of {a} and {b}.", "add_{i}", "a, b", "return a + b"),
    ("Write a Python function {name} that returns {a} times {b}.", "mul_{i}", "a, b", "return a * b"),
    ("Write a Python function {name} that reverses a string.", "reverse_{i}", "s", "return s[::-1]"),
    ("Write a Python function {name} that returns the largest item of a list.", "largest_{i}", "xs", "return max(xs)"),
    ("Write a Python function {name} that counts the vowels in a string.", "vowels_{i}", "s",
     "return sum(1 for c in s.lower() if c in 'aeiou')"),
    ("Write a Python function {name} that returns True if a number is even.", "is_even_{i}", "n", "return n % 2 == 0"),
    ("Write a Python function {name} that squares every item of a list.", "squares_{i}", "xs",
     "return [x * x for x in xs]"),
    ("Write a Python function {name} that returns the factorial of n.", "factorial_{i}", "n",
     "result = 1\n    for k in range(2, n + 1):\n        result *= k\n    return result"),
    ("Write a Python function {name} that keeps the positive numbers of a list.", "positives_{i}", "xs",
     "return [x for x in xs if x > 0]"),
    ("Write a Python function {name} that joins words with {sep}.", "join_{i}", "words", "return {sep!r}.join(words)"),
    ("Write a Python function {name} that returns the last {k} items of a list.", "tail_{i}", "xs",
     "return xs[-{k}:]"),
    ("Write a Python function {name} that adds {k} to every item of a list.", "shift_{i}", "xs",
     "return [x + {k} for x in xs]"),
]
SEPARATORS = [", ", "-", " ", "_", "/"]

# (java method, c# method) templates: the translation set CodeXGLUE-style ({"id", "java", "cs"}).
JAVA_CS = [
    ("public int add{i}(int a, int b) {{ return a + b + {k}; }}", "public int Add{i}(int a, int b) {{ return a + b + {k}; }}"),
    ("public boolean isPositive{i}(int x) {{ return x > {k}; }}", "public bool IsPositive{i}(int x) {{ return x > {k}; }}"),
    ("public String greet{i}(String name) {{ return \"Hello \" + name; }}",
     "public string Greet{i}(string name) {{ return \"Hello \" + name; }}"),
    ("public int length{i}(String s) {{ return s.length() + {k}; }}", "public int Length{i}(string s) {{ return s.Length + {k}; }}"),
    ("public void clear{i}(List<Integer> xs) {{ xs.clear(); }}", "public void Clear{i}(List<int> xs) {{ xs.Clear(); }}"),
    ("public int max{i}(int a, int b) {{ return Math.max(a, b); }}", "public int Max{i}(int a, int b) {{ return Math.Max(a, b); }}"),
    ("public String upper{i}(String s) {{ return s.toUpperCase(); }}", "public string Upper{i}(string s) {{ return s.ToUpper(); }}"),
    ("public int size{i}(List<Integer> xs) {{ return xs.size(); }}", "public int Size{i}(List<int> xs) {{ return xs.Count; }}"),
]


def alpaca_rows(n: int = 360) -> list[dict[str, str]]:
    rows = []
    for i in range(n):
        instruction, name, args, body = PY_TASKS[i % len(PY_TASKS)]
        values = {"i": i, "a": i % 7 + 1, "b": i % 5 + 2, "k": i % 9 + 1, "sep": SEPARATORS[i % len(SEPARATORS)]}
        fn = name.format(**values)
        text = instruction.format(name=fn, **values)
        code = f"def {fn}({args}):\n    {body.format(**values)}"
        rows.append({"instruction": text, "input": "", "output": code})
    return rows


def translation_rows(n: int) -> list[dict[str, str]]:
    rows = []
    for i in range(n):
        java, cs = JAVA_CS[i % len(JAVA_CS)]
        values = {"i": i, "k": i % 9}
        rows.append({"id": str(i), "java": java.format(**values), "cs": cs.format(**values)})
    return rows
