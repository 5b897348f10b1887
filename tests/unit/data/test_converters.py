"""Each converter on small real-shaped fixtures, including bad rows."""

import argparse
import json

import pytest

from mindcode.data import converters
from mindcode.data.converters import CONVERTERS, dpo
from mindcode.data.converters.repair import ir4_or2, strip_java_comments
from mindcode.data.io import RecordError, read_records
from mindcode.errors import MindcodeError


def convert(tmp_path, name, rows, on_error="fail", suffix=".jsonl", **options):
    parser = argparse.ArgumentParser()
    CONVERTERS[name].add_arguments(parser) if name != "dpo-attach" else dpo.add_attach_arguments(parser)
    args = parser.parse_args([f"--{k}={v}" if v is not True else f"--{k}" for k, v in options.items()])
    src = tmp_path / f"in{suffix}"
    src.write_text(json.dumps(rows) if suffix == ".json" else "".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / f"out{suffix}"
    make = dpo.make_attach if name == "dpo-attach" else CONVERTERS[name].make
    summary = converters.run(make(args), str(src), str(out), on_error, progress=False)
    return summary, [r.data for r in read_records(out)]


def test_alpaca_matches_mindformers_layout(tmp_path):
    rows = [{"instruction": "Add.", "input": "", "output": "a + b"}, {"instruction": "Sort.", "input": "xs", "output": "sorted(xs)"}]
    summary, out = convert(tmp_path, "alpaca", rows, suffix=".json")
    assert summary["written"] == 2
    assert out[0] == {"id": "1", "conversations": [
        {"from": "human", "value": "Below is an instruction that describes a task. Write a response that appropriately "
                                   "completes the request.\n\n### Instruction:\nAdd.\n\n### Response:"},
        {"from": "gpt", "value": "a + b"}]}
    assert out[1]["conversations"][0]["value"].endswith("### Instruction:\nSort.\n\n### Input:\nxs\n\n### Response:")
    text = (tmp_path / "out.json").read_text()
    assert text == json.dumps(out, indent=2, ensure_ascii=False)  # json.dump(indent=2), as alpaca_converter.py


def test_alpaca_bad_rows_fail_or_are_counted(tmp_path):
    rows = [{"instruction": "ok", "output": "fine"}, {"instruction": "no output"}, {"instruction": "x", "input": 3, "output": "y"}]
    with pytest.raises(RecordError, match=r"record 1, line \d+, field 'output': missing \(the record has: instruction\) "
                                          r"\(--on-error skip sets such "
                                          r"records aside, counted by reason\)"):
        convert(tmp_path, "alpaca", rows, suffix=".json")
    assert not (tmp_path / "out.json").exists()
    empty = [{"instruction": "ok", "output": "fine"}, {"instruction": "code-alpaca has two", "output": ""}]
    with pytest.raises(RecordError, match=r"field 'output': .*--on-error skip"):
        convert(tmp_path, "alpaca", empty, suffix=".json")
    summary, out = convert(tmp_path, "alpaca", rows, on_error="skip", suffix=".json")
    assert (summary["written"], summary["skipped"]) == (1, 2)
    assert summary["skipped_by_reason"] == {"output: missing": 1, "input: expected str, got int": 1}
    rejects = [json.loads(line) for line in open(summary["rejects_file"])]
    assert [r["index"] for r in rejects] == [1, 2]


def test_codetransocean_positions_and_names(tmp_path):
    multi = {"id": 1, "name": "task", "Go": "package main", "Rust": "fn main() {}"}
    with pytest.raises(MindcodeError, match="--source codetransocean: give --subset .DLTrans.LLMTrans.Multilingual"):
        convert(tmp_path, "translation", [multi], source="codetransocean")  # no silent pick of a layout
    _, out = convert(tmp_path, "translation", [multi], source="codetransocean", subset="MultilingualTrans")
    user, answer = out[0]["messages"]
    assert (out[0]["source_lang"], out[0]["target_lang"]) == ("Go", "Rust")
    assert user["content"].startswith("Translate the following Go code to Rust.") and "```go\npackage main\n```" in user["content"]
    assert answer == {"role": "assistant", "content": "```rust\nfn main() {}\n```"}
    llm = {"id": 0, "output": "23", "Python": "print(23)", "C": "int main(){}"}
    _, out = convert(tmp_path, "translation", [llm], source="codetransocean", subset="LLMTrans")
    assert (out[0]["source_lang"], out[0]["target_lang"]) == ("C", "Python")
    _, out = convert(tmp_path, "translation", [llm], source="codetransocean", source_lang="Python", target_lang="C")
    assert out[0]["source_lang"] == "Python"
    with pytest.raises(RecordError, match="key positions 2 and 3"):
        convert(tmp_path, "translation", [{"id": 1, "C": "x"}], source="codetransocean", subset="NicheTrans")


def test_codexglue_both_directions_refinement_and_fortran(tmp_path):
    row = {"id": 7, "java": "int f() { return 1; }", "cs": "int F() { return 1; }"}
    _, out = convert(tmp_path, "translation", [row], source="codexglue-trans", direction="cs-java")
    assert "C# code to Java" in out[0]["messages"][0]["content"] and "```java\nint f()" in out[0]["messages"][1]["content"]
    _, out = convert(tmp_path, "translation", [{"id": 1, "buggy": "a - b", "fixed": "a + b"}], source="codexglue-refine")
    assert out[0]["messages"][0]["content"].startswith("Fix the bug")
    _, out = convert(tmp_path, "translation", [{"program_code": "program p\nend", "rust_code_translation": "fn main(){}"}],
                     source="codetranslatorllm")
    assert out[0]["source_lang"] == "Fortran" and out[0]["target_lang"] == "Rust"


def test_dpo_pairs_and_attach(tmp_path):
    rows = [{"id": "a", "cpp": "int x;", "java": "int x;", "python": "x = 1"},
            {"id": "b", "cpp": "", "java": "int y;", "python": "y = 2"},
            {"id": "c", "cpp": "", "java": "int z;", "python": "z = 3"}]
    summary, pairs = convert(tmp_path, "dpo", rows, source_lang="python", target_lang="java")
    assert pairs[0]["prompt"].startswith("Translate the following Python code to Java.")
    assert pairs[0]["chosen"] == "```java\nint x;\n```"
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    preds = [{"id": "a", "completion": "```java\nint x;\n```"}, {"id": "b", "completion": "```java\nlong y;\n```"}]
    (tmp_path / "preds.jsonl").write_text("".join(json.dumps(p) + "\n" for p in preds))
    summary, out = convert(tmp_path, "dpo-attach", pairs, predictions=str(tmp_path / "preds.jsonl"))
    assert [r["id"] for r in out] == ["b"] and out[0]["rejected"] == "```java\nlong y;\n```"
    assert summary["skipped_by_reason"] == {"chosen == rejected": 1, "no prediction for this id": 1}
    # compared exactly: inner whitespace (in Python, indentation: another program) makes another answer; trailing
    # whitespace only with --ignore_trailing_whitespace
    near = [{"id": "a", "completion": "```java\nint  x;\n```"}, {"id": "b", "completion": "```java\nint y;  \n```  "}]
    (tmp_path / "preds.jsonl").write_text("".join(json.dumps(p) + "\n" for p in near))
    _, out = convert(tmp_path, "dpo-attach", pairs, predictions=str(tmp_path / "preds.jsonl"))
    assert [r["id"] for r in out] == ["a", "b"]
    summary, out = convert(tmp_path, "dpo-attach", pairs, predictions=str(tmp_path / "preds.jsonl"),
                           ignore_trailing_whitespace=True)
    assert [r["id"] for r in out] == ["a"] and summary["skipped_by_reason"]["chosen == rejected"] == 1
    # an empty answer is no rejected answer; a pair predicted twice is an error, not a silent overwrite
    (tmp_path / "preds.jsonl").write_text(json.dumps({"id": "b", "completion": " \n"}) + "\n")
    summary, out = convert(tmp_path, "dpo-attach", pairs, predictions=str(tmp_path / "preds.jsonl"))
    assert out == [] and summary["skipped_by_reason"]["empty prediction"] == 1
    (tmp_path / "preds.jsonl").write_text("".join(json.dumps(p) + "\n" for p in [*preds, preds[1]]))
    with pytest.raises(RecordError, match=r"preds\.jsonl: record 2, line 3, field 'id': 'b' appears twice"):
        convert(tmp_path, "dpo-attach", pairs, predictions=str(tmp_path / "preds.jsonl"))
    _, conv = convert(tmp_path, "dpo", rows[:1], source_lang="python", target_lang="java", conversational=True)
    assert conv[0]["prompt"][0]["role"] == "user" and conv[0]["chosen"][0]["role"] == "assistant"


BUGGY = """public int sum(int[] xs) {
    // add them up
    int total = 0;
    for (int i = 1; i < xs.length; i++) {
        total += xs[i];
    }

    return total;
}
"""
FIXED = BUGGY.replace("int i = 1;", "int i = 0;")


def test_repair_ir4_or2():
    source, target = ir4_or2(strip_java_comments(BUGGY).replace("    \n", ""), strip_java_comments(FIXED).replace("    \n", ""))
    assert "// buggy code\n//     for (int i = 1; i < xs.length; i++) {\n    <FILL_ME>\n" in source
    assert target == "    for (int i = 0; i < xs.length; i++) {\n"


def test_repair_fill_me_is_indented_like_the_fix_and_keeps_crlf():
    """RepairLLaMA's IR4 puts <FILL_ME> at the indentation of the fix's first line: a fix deeper than the buggy
    line, and a fix that only adds lines (nothing buggy to comment out)."""
    buggy = "void f() {\n    a();\n    b();\n}\n"
    deeper = buggy.replace("    a();\n", "        if (x) a();\n")
    source, target = ir4_or2(buggy, deeper)
    assert source == "void f() {\n// buggy code\n//     a();\n        <FILL_ME>\n    b();\n}\n"
    assert target == "        if (x) a();\n"
    added = buggy.replace("    b();\n", "    b();\n      check();\n")
    source, target = ir4_or2(buggy, added)
    assert source == "void f() {\n    a();\n    b();\n// buggy code\n// \n      <FILL_ME>\n}\n" and target == "      check();\n"
    crlf = ir4_or2(buggy.replace("\n", "\r\n"), deeper.replace("\n", "\r\n"))[0]
    assert crlf == "void f() {\r\n// buggy code\r\n//     a();\r\n        <FILL_ME>\r\n    b();\r\n}\r\n"


def test_repair_converter_filters_and_fim(tmp_path):
    rows = [{"buggy_function": BUGGY, "fixed_function": FIXED},
            {"buggy_function": BUGGY, "fixed_function": FIXED},  # duplicate
            {"buggy_function": BUGGY, "fixed_function": BUGGY.replace("add them up", "sum")},  # comment only
            {"buggy_function": BUGGY}]
    summary, out = convert(tmp_path, "repair", rows, on_error="skip")
    assert len(out) == 1 and "// add them up" not in out[0]["input"] and "\n\n" not in out[0]["input"]
    assert summary["skipped_by_reason"] == {"duplicate": 1, "only comments or blank lines changed": 1,
                                           "fixed_function: missing": 1}
    _, fim = convert(tmp_path, "repair", rows[:1], form="fim")
    assert fim[0]["fim_middle"] == "    for (int i = 0; i < xs.length; i++) {\n"
    assert fim[0]["fim_prefix"].endswith("int total = 0;\n") and fim[0]["fim_suffix"].startswith("        total")
    summary, out = convert(tmp_path, "repair", rows[:1], max_tokens=5, on_error="skip",
                           model_file="mindcode/assets/tiny_code.model")
    assert out == [] and summary["skipped_by_reason"] == {"longer than 5 tokens": 1}
    # --max_tokens counts with the tokenizer that will train: without --model_file it is an error, not a guess
    with pytest.raises(MindcodeError, match="--max_tokens counts tokens with the model's tokenizer"):
        convert(tmp_path, "repair", rows[:1], max_tokens=5)
    # a fix that only deletes lines has nothing to generate: skipped and counted, in both forms
    deleting = [{"buggy_function": BUGGY, "fixed_function": BUGGY.replace("    int total = 0;\n", "")}]
    for form in ("ir4-or2", "fim"):
        summary, out = convert(tmp_path, "repair", deleting, on_error="skip", form=form)
        assert out == [] and summary["skipped_by_reason"] == {"the fix only deletes lines (nothing to generate)": 1}


def test_translation_needs_both_language_keys_or_neither(tmp_path):
    with pytest.raises(MindcodeError, match="--source_lang without --target_lang: give both"):
        convert(tmp_path, "translation", [{"id": 1, "C#": "x", "Java": "y"}], source="codetransocean",
                source_lang="Java")


def test_strip_java_comments_keeps_strings():
    code = 'String s = "// not a comment"; /* gone */ char c = \'"\'; // gone\nx = "a\\"b"; // x'
    assert strip_java_comments(code) == 'String s = "// not a comment";  char c = \'"\'; \nx = "a\\"b"; '


def test_commitpack_and_oss_instruct(tmp_path):
    row = {"commit": "abc", "old_contents": "x = 1\n", "new_contents": "x = 2\n", "subject": "Bump x",
           "message": "Bump x\n", "lang": "Python", "license": "mit"}
    _, out = convert(tmp_path, "commitpack", [row, {**row, "new_contents": "x = 1\n"}], on_error="skip")
    assert out == [{"commit": "abc", "lang": "Python", "license": "mit", "inputs": "Bump x\n\nx = 1\n", "targets": "x = 2\n"}]
    # OctoPack's cleaned subject, not the whole message with its trailers (--message_field message for that)
    svn = {**row, "subject": "Fix the parser", "message": "Fix the parser\n\nSee http://x/1\ngit-svn-id: svn://x@42\n"}
    _, out = convert(tmp_path, "commitpack", [svn])
    assert out[0]["inputs"] == "Fix the parser\n\nx = 1\n"
    _, out = convert(tmp_path, "commitpack", [svn], message_field="message")
    assert "git-svn-id: svn://x@42" in out[0]["inputs"]
    _, out = convert(tmp_path, "commitpack", [row], form="qa")
    assert out[0]["input"] == "Question: Bump x\n\nx = 1\n\n\nAnswer:" and out[0]["output"] == " x = 2\n"
    magicoder = {"raw_index": 7, "openai_fingerprint": "fp_1", "problem": "P", "seed": "s", "solution": "S",
                 "lang": "python"}
    _, out = convert(tmp_path, "oss-instruct", [magicoder])  # Magicoder's preprocess_data.py (src-instruct)
    assert out == [{"instruction": "Write a solution to the following coding problem:\nP", "response": "S",
                    "raw_index": 7, "openai_fingerprint": "fp_1", "seed": "s", "lang": "python"}]
    assert list(out[0]) == ["instruction", "response", "raw_index", "openai_fingerprint", "seed", "lang"]
    _, out = convert(tmp_path, "oss-instruct", [magicoder], instruction="problem")
    assert out[0]["instruction"] == "P"


def test_outputs_get_the_usual_mode_and_a_closed_pipe_is_no_error(tmp_path):
    import os
    import subprocess
    import sys

    old = os.umask(0o022)
    try:
        _, _ = convert(tmp_path, "alpaca", [{"instruction": "a", "output": "b"}], suffix=".json")
    finally:
        os.umask(old)
    assert oct((tmp_path / "out.json").stat().st_mode & 0o777) == "0o644"
    from mindcode.data.build import tokenize_dataset
    from mindcode.tokenizer import TINY_TOKENIZER

    long = [{"id": "1", "conversations": [{"from": "human", "value": "Write it out."},
                                          {"from": "gpt", "value": "def f(x):\n    return x\n" * 4000}]}]
    (tmp_path / "long.json").write_text(json.dumps(long))
    tokenize_dataset("qa", str(tmp_path / "long.json"), str(TINY_TOKENIZER), 60000,
                     torch_output=str(tmp_path / "npy"), progress=False)
    done = subprocess.run(f"{sys.executable} -m mindcode data inspect --input {tmp_path / 'npy'} --model_file "
                          f"{TINY_TOKENIZER} --json | head -c 10", shell=True, capture_output=True, text=True)
    assert len(done.stdout) == 10 and done.stderr == "", done.stderr[-500:]  # ~500 kB cut short: no error


def test_a_fence_inside_code_does_not_close_its_block(tmp_path):
    """A triple backtick in the code (a docstring showing Markdown) gets a longer fence, which extract_code reads."""
    from mindcode.eval.bleu import extract_code

    code = 'def doc():\n    return """```python\nx = 1\n```"""'
    _, out = convert(tmp_path, "translation", [{"id": "1", "java": "int x;", "cs": code}], source="codexglue-trans")
    answer = out[0]["messages"][1]["content"]
    assert answer == f"````csharp\n{code}\n````" and extract_code(answer) == code
    assert extract_code("```java\nint x;\n```") == "int x;" and extract_code("```java\nint x;```") == "int x;"


def test_small_things_said_in_one_line(tmp_path):
    """A missing field names the fields the record has; CSV errors name the record's first line (as JSON's do); an
    output that is not JSON is refused before reading; `--help` shows the defaults."""
    import subprocess
    import sys

    from mindcode.data.io import read_records, require

    (tmp_path / "rows.csv").write_text('instruction,output\n"a\nmulti-line",b\nc,d\n')
    records = list(read_records(tmp_path / "rows.csv"))
    assert [r.line for r in records] == [2, 4]
    with pytest.raises(RecordError, match=r"rows\.csv: record 1, line 4, field 'input': missing \(the record has: "
                                          r"instruction, output\)"):
        require(records[1], "input")
    with pytest.raises(MindcodeError, match=r"out\.csv: converters write \.json \(an array\) or \.jsonl"):
        convert(tmp_path, "alpaca", [{"instruction": "a", "output": "b"}], suffix=".csv")
    for verb, default in (("translation", "(default: java-cs)"), ("dpo", "(default: python)")):
        shown = subprocess.run([sys.executable, "-m", "mindcode", "data", verb, "--help"], capture_output=True,
                               text=True).stdout
        assert default in " ".join(shown.split()), verb


def test_validate_says_to_attach_the_rejected_answers(tmp_path):
    from mindcode.data.checks import validate

    _, pairs = convert(tmp_path, "dpo", [{"id": "a", "java": "int x;", "python": "x = 1", "cpp": ""}])
    (tmp_path / "step1.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    report = validate(str(tmp_path / "step1.jsonl"))
    assert report["by_reason"] == {"no rejected answer yet": 1}
    assert "run `mindcode data dpo-attach --predictions PREDS` (step 2)" in report["examples"][0]


def test_inspect_shows_the_fim_markers(tmp_path):
    from mindcode.data.build import tokenize_dataset
    from mindcode.data.checks import inspect
    from mindcode.tokenizer import TINY_TOKENIZER

    (tmp_path / "fim.jsonl").write_text(json.dumps({"fim_prefix": "def f(x):\n", "fim_suffix": "\n",
                                                    "fim_middle": "    return x"}) + "\n")
    tokenize_dataset("qa", str(tmp_path / "fim.jsonl"), str(TINY_TOKENIZER), 64, torch_output=str(tmp_path / "npy"),
                     progress=False)
    text = "".join(seg["text"] for seg in inspect(str(tmp_path / "npy"), str(TINY_TOKENIZER))["segments"])
    assert all(marker in text for marker in ("▁<PRE>", "▁<SUF>", "▁<MID>")), text
