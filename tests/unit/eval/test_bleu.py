import json
import subprocess
import sys

import pytest

from mindcode.eval.bleu import codexglue_bleu, extract_code, score

PREDS = ["public int add ( int a , int b ) { return a + b ; }", "int x = 1 ;", "for ( int i = 0 ; i < n ; i ++ ) sum += i ;",
         "return null ; // todo"]
REFS = ["public int add ( int a , int b ) { return a + b ; }", "int x = 2 ;", "for ( int i = 0 ; i < n ; ++ i ) { sum += i ; }",
        "throw new IllegalStateException ( ) ;"]


def test_sacrebleu_matches_the_package():
    sacrebleu = pytest.importorskip("sacrebleu")
    assert score(PREDS, [[r] for r in REFS])["sacrebleu"] == pytest.approx(sacrebleu.corpus_bleu(PREDS, [REFS]).score,
                                                                          abs=1e-6)


def test_codexglue_bleu_matches_an_independent_implementation():
    """CodeXGLUE's BLEU adds one to matches and candidates of every order, unigrams included (its compute_bleu with
    smooth=True); NLTK's corpus BLEU with that smoothing is an independent implementation (single references, and
    hypotheses of 4+ tokens: NLTK floors a sentence's n-gram count at 1 where CodeXGLUE counts 0)."""
    from fractions import Fraction

    nltk = pytest.importorskip("nltk.translate.bleu_score")

    def add_one(p_n, *args, **kwargs):
        return [Fraction(p.numerator + 1, p.denominator + 1, _normalize=False) for p in p_n]

    expected = 100 * nltk.corpus_bleu([[r.split()] for r in REFS], [p.split() for p in PREDS],
                                      smoothing_function=add_one)
    assert codexglue_bleu(PREDS, [[r] for r in REFS]) == pytest.approx(expected, abs=1e-6)


def test_codexglue_bleu_by_hand():
    # "a b c" vs "a b d": matches 2/3, 1/2, 0/1, 0/0 -> (3/4 * 2/3 * 1/2 * 1/1) ** (1/4), no brevity penalty.
    assert codexglue_bleu(["a b c"], [["a b d"]]) == pytest.approx(100 * (0.25 ** 0.25), abs=1e-9)


def test_exact_match_and_extract_code():
    result = score(["a  b", " c\n", "e"], [["a b"], ["c"], ["f"]])  # CodeXGLUE: stripped lines, inner spaces count
    assert result["exact_match"] == pytest.approx(1 / 3) and result["exact_match_normalised"] == pytest.approx(2 / 3)
    assert extract_code("Here:\n```java\nint x;\n```\nDone") == "int x;"
    assert extract_code("no fence") == "no fence"


def test_codebleu_when_installed():
    pytest.importorskip("codebleu")
    result = score(["def f(x):\n    return x + 1"], [["def f(x):\n    return x+1"]], lang="python")
    assert 0 < result["codebleu"]["codebleu"] <= 1


def test_cli_bleu_per_pair_and_json(tmp_path):
    preds = [{"id": str(i), "completion": f"```java\n{p}\n```"} for i, p in enumerate(PREDS)]
    refs = [{"id": str(i), "target": r, "source_lang": "C#" if i % 2 else "Python", "target_lang": "Java"}
            for i, r in enumerate(REFS)]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in preds))
    (tmp_path / "r.jsonl").write_text("".join(json.dumps(r) + "\n" for r in refs))
    result = subprocess.run([sys.executable, "-m", "mindcode", "eval", "bleu", "--predictions", str(tmp_path / "p.jsonl"),
                             "--references", str(tmp_path / "r.jsonl"), "--extract-code", "--json"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert set(summary["by_pair"]) == {"C#->Java", "Python->Java"} and summary["exact_match"] == 0.25
    assert (tmp_path / "p.jsonl.summary.md").read_text().startswith("| set | n | sacreBLEU")


def test_repair_top_k(tmp_path):
    from mindcode.eval.repair import evaluate

    (tmp_path / "p.jsonl").write_text("\n".join(json.dumps(r) for r in [
        {"id": "a", "completions": ["x = 1", "x  =  2"]}, {"id": "b", "completions": ["y", "z"]}]))
    (tmp_path / "r.jsonl").write_text("\n".join(json.dumps(r) for r in [{"id": "a", "output": "x = 2"},
                                                                      {"id": "b", "output": "q"}]))
    assert evaluate(str(tmp_path / "p.jsonl"), str(tmp_path / "r.jsonl"), [1, 2]) == {
        "n": 2, "exact_match@1": 0.0, "exact_match@2": 0.5}
