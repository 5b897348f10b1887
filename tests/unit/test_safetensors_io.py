import json

import numpy as np
import pytest
from safetensors.numpy import save_file

from mindcode.convert.safetensors_io import INDEX_FILE, list_tensors, load_tensor
from mindcode.errors import MindcodeError


def test_reads_float32_and_float16_exactly(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"a": rng.standard_normal((3, 5)).astype(np.float32), "b": rng.standard_normal(7).astype(np.float16)}
    save_file(arrays, str(tmp_path / "model.safetensors"))
    got = {info.name: (info.dtype, load_tensor(info)) for info in list_tensors(tmp_path)}
    assert got["a"][0] == "F32" and got["b"][0] == "F16"
    np.testing.assert_array_equal(got["a"][1], arrays["a"])
    np.testing.assert_array_equal(got["b"][1], arrays["b"])


def test_bf16_widens_exactly(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file as save_torch

    source = torch.randn(4, 6).to(torch.bfloat16)
    save_torch({"w": source}, str(tmp_path / "model.safetensors"))
    (info,) = list_tensors(tmp_path)
    assert info.dtype == "BF16"
    np.testing.assert_array_equal(load_tensor(info), source.float().numpy())


def test_truncated_file_names_file_and_tensor(tmp_path):
    path = tmp_path / "model.safetensors"
    save_file({"w": np.ones((64, 64), np.float32)}, str(path))
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(MindcodeError, match=r"model\.safetensors: truncated: tensor 'w'"):
        list_tensors(tmp_path)
    path.write_bytes(b"\x01")
    with pytest.raises(MindcodeError, match="truncated safetensors file"):
        list_tensors(tmp_path)


def test_missing_shard_is_named(tmp_path):
    save_file({"a": np.ones(2, np.float32)}, str(tmp_path / "model-00001-of-00002.safetensors"))
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    (tmp_path / INDEX_FILE).write_text(json.dumps(index))
    with pytest.raises(MindcodeError, match=r"model-00002-of-00002\.safetensors: shard named by .* is missing"):
        list_tensors(tmp_path)


def test_empty_directory(tmp_path):
    with pytest.raises(MindcodeError, match="no \\*.safetensors files"):
        list_tensors(tmp_path)
