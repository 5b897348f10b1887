import pytest

from mindcode.errors import MindcodeError
from mindcode.presets import PRESETS
from mindcode.tokenizer import TINY_TOKENIZER, load_sentencepiece

CODE = 'def add(a, b):\n    """Add two numbers."""\n\treturn a + b  # ünïcode ✓\n\n\n    x = [1, 22, 333]\n'


def test_special_ids_like_codellama():
    sp = load_sentencepiece()
    assert [sp.id_to_piece(i) for i in range(3)] == ["<unk>", "<s>", "</s>"]
    assert (sp.unk_id(), sp.bos_id(), sp.eos_id()) == (0, 1, 2)
    assert sp.get_piece_size() == PRESETS["tiny"].vocab_size


def test_code_round_trips_with_whitespace_and_unicode():
    sp = load_sentencepiece()
    ids = sp.encode(CODE)
    assert sp.decode(ids) == CODE
    assert 0 not in ids  # byte fallback: nothing becomes <unk>
    assert len(ids) < len(CODE)  # it learned merges, not only bytes


def test_transformers_llama_tokenizer_agrees():
    transformers = pytest.importorskip("transformers")
    tok = transformers.LlamaTokenizer(vocab_file=str(TINY_TOKENIZER), legacy=False)
    ids = tok(CODE).input_ids
    assert ids == [1, *load_sentencepiece().encode(CODE)]
    assert tok.decode(ids, skip_special_tokens=True) == CODE


def test_missing_model_file(tmp_path):
    with pytest.raises(MindcodeError, match="no such tokenizer model file"):
        load_sentencepiece(tmp_path / "nope.model")
