"""MindRecord files for MindFormers (``MindDataset`` / ``CausalLanguageModelDataset``), written atomically.

The writer works in a temp folder beside the output and moves the file and its ``.db`` index into place only on
commit; the index refers to the file by its base name, so the pair stays valid after the move.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from backends.ascend import runtime
from mindcode.data.io import usual_mode


class MindRecordWriter:
    def __init__(self, path: str | Path, columns: list[str], dataset_type: str):
        runtime.mindspore()
        from mindspore.mindrecord import FileWriter

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmpdir = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", dir=self.path.parent))
        self.columns = columns
        self.writer = FileWriter(file_name=str(self.tmpdir / self.path.name), shard_num=1, overwrite=True)
        self.writer.add_schema({c: {"type": "int32", "shape": [-1]} for c in columns}, dataset_type)
        from mindspore import _c_mindrecord

        self._success = _c_mindrecord.MSRStatus.SUCCESS

    def write(self, **arrays: np.ndarray) -> None:
        n = len(arrays[self.columns[0]])
        shard = getattr(self.writer, "_writer", None)
        if shard is None or not getattr(shard, "is_open", False) or not self._blob_only(shard):
            # The public path: opens the file, sets the header and validates rows against the schema.
            self.writer.write_raw_data([{c: arrays[c][i] for c in self.columns} for i in range(n)])
            return
        # Fast path for the next batches: MindSpore's per-row Python (schema look-ups in C for every row, blob
        # merging) costs more than tokenizing. Every column is a blob, so build each row's blob with numpy in
        # MindRecord's layout (per field: 8-byte big-endian byte count, then the bytes) and hand the rows to the
        # same C writer. The tests read every file back through MindDataset.
        fields = shard.get_shard_header().blob_fields
        parts = []
        for field in fields:
            data = np.ascontiguousarray(arrays[field], dtype=np.int32).reshape(n, -1).view(np.uint8)
            size = np.full((n, 1), data.shape[1], dtype=">u8").view(np.uint8).reshape(n, 8)
            parts += [size, data]
        rows = np.concatenate(parts, axis=1)
        status = shard._writer.write_raw_data({}, [row.tobytes() for row in rows], False, False)
        if status != self._success:
            raise RuntimeError(f"{self.path}: MindRecord write failed ({status})")

    def _blob_only(self, shard) -> bool:
        header = shard.get_shard_header()
        return set(header.blob_fields) == set(header.schema) == set(self.columns)

    def commit(self) -> None:
        self.writer.commit()
        for name in (self.path.name, self.path.name + ".db"):
            os.chmod(self.tmpdir / name, usual_mode())  # MindSpore writes 0600; outputs get the usual mode
            os.replace(self.tmpdir / name, self.path.parent / name)
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def abort(self) -> None:
        shutil.rmtree(self.tmpdir, ignore_errors=True)


def read_mindrecord(path: str | Path, columns: list[str]) -> dict[str, np.ndarray]:
    """All rows of a MindRecord file as ``{column: [n, length] array}`` (through MindSpore's own reader)."""
    runtime.mindspore()
    import mindspore.dataset as ds

    data = ds.MindDataset(str(path), columns_list=columns, shuffle=False)
    rows = {c: [] for c in columns}
    for row in data.create_dict_iterator(output_numpy=True, num_epochs=1):
        for c in columns:
            rows[c].append(row[c])
    return {c: np.stack(v) if v else np.zeros((0, 0), np.int32) for c, v in rows.items()}


def record_columns(path: str | Path) -> list[str]:
    """The columns a MindRecord file has (``input_ids`` first)."""
    runtime.mindspore()
    from mindspore.mindrecord import FileReader

    reader = FileReader(str(path))
    try:
        return sorted(reader.schema(), key=lambda c: c != "input_ids")
    finally:
        reader.close()
