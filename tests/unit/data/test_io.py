import json

import pytest

from mindcode.data import io
from mindcode.data.io import RecordError, Rejects, read_records, write_json_array, write_jsonl


def test_json_array_streams_across_chunk_boundaries_with_lines(tmp_path, monkeypatch):
    monkeypatch.setattr(io, "_CHUNK", 7)  # force many refills mid-record
    rows = [{"a": i, "text": "x" * (i * 5), "nested": {"k": [1, 2, {"z": "}"}]}} for i in range(30)]
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(rows, indent=2))
    records = list(read_records(path))
    assert [r.data for r in records] == rows
    lines = path.read_text().splitlines()
    for r in records:  # each record's line is the line of its opening brace
        assert lines[r.line - 1].strip() == "{"


def test_json_array_bad_record_names_file_record_and_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('[\n  {"a": 1},\n  {"a": 2,},\n  {"a": 3}\n]')
    with pytest.raises(RecordError, match=r"bad\.json: record 1, line 3: invalid JSON"):
        list(read_records(path))


def test_jsonl_errors_and_blank_lines(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n\n[1, 2]\n')
    it = read_records(path)
    assert next(it).data == {"a": 1}
    with pytest.raises(RecordError, match=r"x\.jsonl: record 1, line 3: expected a JSON object, got list"):
        next(it)


def test_csv_and_parquet(tmp_path):
    (tmp_path / "x.csv").write_text('id,code\n1,"def f():\n    return 1"\n2,x\n')
    rows = [r.data for r in read_records(tmp_path / "x.csv")]
    assert rows == [{"id": "1", "code": "def f():\n    return 1"}, {"id": "2", "code": "x"}]
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"problem": ["p1", "p2"], "solution": ["s1", "s2"]}), tmp_path / "x.parquet")
    assert [r.data["solution"] for r in read_records(tmp_path / "x.parquet")] == ["s1", "s2"]


def test_unknown_format(tmp_path):
    (tmp_path / "x.xml").write_text("<a/>")
    with pytest.raises(Exception, match="unknown format '.xml'"):
        read_records(tmp_path / "x.xml")


def test_json_array_writer_matches_json_dump_indent_2(tmp_path):
    rows = [{"id": "1", "conversations": [{"from": "human", "value": "héllo\n"}]}, {"id": "2", "x": []}]
    write_json_array(tmp_path / "o.json", rows)
    assert (tmp_path / "o.json").read_text() == json.dumps(rows, indent=2, ensure_ascii=False)


def test_failed_write_leaves_nothing(tmp_path):
    def rows():
        yield {"a": 1}
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_jsonl(tmp_path / "o.jsonl", rows())
    assert list(tmp_path.iterdir()) == []


def test_rejects_fail_raises_skip_counts(tmp_path):
    record = io.Record({"x": 1}, "f.jsonl", 4, 5)
    error = RecordError(record, "code", "missing")
    with pytest.raises(RecordError):
        Rejects("fail").handle(error)
    rejects = Rejects("skip", output_path=tmp_path / "out.jsonl")
    rejects.handle(error)
    assert rejects.reasons == {"code: missing": 1}
    assert not (tmp_path / "out.jsonl.rejects.jsonl").exists()  # written as it happens, under a temp name
    path = rejects.write()
    assert json.loads(open(path).read())["error"] == "f.jsonl: record 4, line 5, field 'code': missing"


@pytest.mark.parametrize("suffix, line", [(".jsonl", 3), (".txt", 5)])
def test_bytes_that_are_not_utf8_name_the_file_and_line(tmp_path, suffix, line):
    from mindcode.data.build import iter_inputs
    from mindcode.errors import MindcodeError

    path = tmp_path / f"bad{suffix}"
    good = b'{"text": "ok"}\n' if suffix == ".jsonl" else b"ok\n\n"
    path.write_bytes(good * 2 + b'{"text": "caf\xe9"}\n')
    with pytest.raises(MindcodeError, match=rf"bad\{suffix}: line {line}: not UTF-8 \(byte 0xe9 at column 14\)"):
        list(iter_inputs(str(path)))


def test_text_files_stream_paragraphs_with_their_lines(tmp_path):
    from mindcode.data.build import iter_inputs

    (tmp_path / "t.txt").write_text("def a():\n    pass\n\n\ndef b():\n    return 1\n")
    records = list(iter_inputs(str(tmp_path / "t.txt")))
    assert [(r.data["text"], r.line) for r in records] == [("def a():\n    pass", 1), ("def b():\n    return 1", 5)]
