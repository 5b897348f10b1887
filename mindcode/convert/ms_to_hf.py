"""MindSpore checkpoint (MindFormers names) -> a standard HF directory, streamed tensor by tensor.

MindFormers' fused ``w_qkv`` / ``w_gate_hidden`` (``qkv_concat``) are split back into HF's tensors. Writes
``model.safetensors`` (or ``model-0000i-of-0000n.safetensors`` shards plus the index), ``config.json`` and
``generation_config.json`` so that ``transformers`` ``from_pretrained`` loads it. Training state (AdamW moments, step
counters, loss scale) is dropped and listed in the summary; any other unknown name is an error. The model shape
comes from ``--config``: an HF ``config.json``, a mindcode/MindFormers YAML (its ``model.model_config``), or a preset.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from mindcode.convert import ckpt_io, safetensors_io
from mindcode.convert.casting import cast_chunks
from mindcode.convert.hf_to_ms import DTYPE_FLAGS, expected_weights
from mindcode.convert.fused import split_index
from mindcode.convert.keymap import hf_to_ms, ms_to_hf, training_state
from mindcode.convert.lora import Adapter, check_adapter, lora_summary, merged_chunks
from mindcode.convert.progress import Run
from mindcode.convert.sources import list_sources
from mindcode.errors import MindcodeError
from mindcode.presets import PRESETS, ModelConfig, get_preset


def resolve_config(spec: str) -> ModelConfig:
    path = Path(spec)
    if path.suffix == ".json":
        if not path.is_file():
            raise MindcodeError(f"{path}: no such config.json")
        return ModelConfig.from_hf_config(json.loads(path.read_text()), name=path.parent.name or "model")
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise MindcodeError(f"{path}: no such YAML config")
        model = (yaml.safe_load(path.read_text()) or {}).get("model", {})
        if "model_config" not in model:
            raise MindcodeError(f"{path}: no model.model_config section")
        return ModelConfig.from_mindformers_config(model["model_config"], name=f"{path}: model.model_config")
    if spec in PRESETS:
        return get_preset(spec)
    raise MindcodeError(f"--config {spec!r}: give an HF config.json, a YAML with model.model_config, or a preset "
                        f"({', '.join(sorted(PRESETS))})")


def parse_size(text: str) -> int:
    units = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "B": 1}
    upper = text.strip().upper()
    for unit, factor in units.items():
        if upper.endswith(unit):
            return int(float(upper[: -len(unit)]) * factor)
    return int(upper)


def index_ms(path: Path) -> list[tuple[str, str, tuple[int, ...], int, Any]]:
    """(name, dtype, shape, nbytes, chunks()) for a .ckpt or a MindSpore safetensors file."""
    if path.suffix == ".safetensors":
        return [(i.name, {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}.get(i.dtype, i.dtype), i.shape,
                 i.nbytes, (lambda i=i: safetensors_io.read_chunks(i))) for i in safetensors_io.read_header(path)]
    return [(t.name, ckpt_io.MS_TO_DTYPE.get(t.ms_type, t.ms_type), t.shape, t.nbytes,
             (lambda t=t: ckpt_io.read_chunks(path, t))) for t in ckpt_io.index_ckpt(path)]


def index_hf(directory: Path) -> list[tuple[str, str, tuple[int, ...], int, Any]]:
    """The same entries for an HF directory (HF names)."""
    return [(s.name, s.dtype, s.shape, s.nbytes, s.chunks) for s in list_sources(directory)]


def convert_ms_to_hf(input_path: str | Path, output_path: str | Path, config: str | None = None,
                     dtype: str | None = None, max_shard_size: str = "5GB", verify: bool = False,
                     progress: bool = True, adapter: Adapter | None = None) -> dict[str, Any]:
    """A MindSpore checkpoint (or an HF directory: re-shard, cast, merge) -> an HF directory.

    ``config`` may be left out for an HF directory (its own ``config.json``); ``adapter`` is merged in.
    """
    path, out = Path(input_path), Path(output_path)
    from_hf = path.is_dir()
    if config is None and not from_hf:
        raise MindcodeError(f"{path}: converting a MindSpore checkpoint to HF needs --config "
                            "(config.json, YAML or preset)")
    model = resolve_config(config or str(path / "config.json"))
    plan, dropped, dtypes = conversion_plan(path, from_hf, model, dtype)
    merged = check_adapter(adapter, {p[0] for p in plan})
    shards = _shards(plan, parse_size(max_shard_size))
    names = (["model.safetensors"] if len(shards) == 1 else
             [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))])

    run = Run(total=sum(p[6] for p in plan), desc="ms->hf", progress=progress)
    by_name = {p[0]: p for p in plan}
    digests: dict[str, str] = {}

    def stream(name: str):
        _, source_dtype, target, shape, _, chunks, _ = by_name[name]
        if name in merged:
            chunks = partial(merged_chunks, chunks, source_dtype, shape, adapter.delta(name))
        for chunk in cast_chunks(chunks(), source_dtype, target):
            run.advance(len(chunk))
            yield chunk

    with run.atomic_dir(out) as tmp:
        for file_name, shard in zip(names, shards):
            entries = [(p[0], p[2], p[3], p[4]) for p in shard]
            safetensors_io.write_safetensors(tmp / file_name, entries, lambda n: run.digest(n, stream(n), digests))
        if len(shards) > 1:
            index = {"metadata": {"total_size": sum(p[4] for p in plan)},
                     "weight_map": {p[0]: f for f, shard in zip(names, shards) for p in shard}}
            (tmp / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
        main_dtype = max(dtypes, key=dtypes.get) if dtypes else "float32"
        (tmp / "config.json").write_text(json.dumps({**model.to_hf_config(), "torch_dtype": main_dtype}, indent=2) + "\n")
        (tmp / "generation_config.json").write_text(json.dumps(
            {"bos_token_id": model.bos_token_id, "eos_token_id": model.eos_token_id, "_from_model_config": True},
            indent=2) + "\n")
        if verify:
            for file_name in names:
                found = {i.name: i for i in safetensors_io.read_header(tmp / file_name)}
                run.verify(tmp / file_name, "safetensors", {n: digests[n] for n in found},
                           {n: _Uncast(by_name[n]) for n in found if by_name[n][1] == by_name[n][2] and n not in merged})
    return run.summary(input_path=str(path), output_path=str(out), tensors=len(plan), shards=len(shards),
                       dtypes=dtypes, dropped=dropped, verified=verify, **lora_summary(adapter))


def conversion_plan(path: Path, from_hf: bool, model: ModelConfig, dtype: str | None) -> tuple[list, list, dict]:
    """``[(HF name, source dtype, target dtype, shape, output bytes, chunks, source bytes)]`` for every weight of
    ``model``, each checked (name, shape, dtype); the names dropped (training state, HF extras); target dtype
    counts."""
    expected = expected_weights(model)
    plan, dropped, dtypes = [], [], {}
    for name, source_dtype, shape, nbytes, chunks in (index_hf(path) if from_hf else split_index(index_ms(path), model)):
        if training_state(name) or (from_hf and hf_to_ms(name, source=str(path)) is None):
            dropped.append(name)
            continue
        hf_name = name if from_hf else ms_to_hf(name, source=str(path))
        want = expected.get(hf_name)
        if want is None:
            raise MindcodeError(f"{path}: {name} is not a weight of a {model.num_layers}-layer model")
        if tuple(shape) != want:
            raise MindcodeError(f"{path}: {name} has shape {list(shape)}, the config implies {list(want)}")
        if source_dtype not in ckpt_io.DTYPE_TO_MS:
            raise MindcodeError(f"{path}: {name} has dtype {source_dtype}; weights must be float32/16 or bf16")
        target = DTYPE_FLAGS[dtype] if dtype else source_dtype
        size = nbytes // ckpt_io.itemsize(source_dtype) * ckpt_io.itemsize(target)
        dtypes[target] = dtypes.get(target, 0) + 1
        plan.append((hf_name, source_dtype, target, tuple(shape), size, chunks, nbytes))
    missing = sorted(set(expected) - {p[0] for p in plan})
    if missing:
        raise MindcodeError(f"{path}: {len(missing)} weights missing, first {missing[0]!r}")
    return plan, dropped, dtypes


def _shards(plan: list, limit: int) -> list[list[tuple]]:
    """The plan in consecutive shards of at most ``limit`` output bytes (a larger tensor alone in its shard)."""
    shards: list[list[tuple]] = [[]]
    for item in plan:
        if shards[-1] and sum(p[4] for p in shards[-1]) + item[4] > limit:
            shards.append([])
        shards[-1].append(item)
    return shards


class _Uncast:
    """A plan entry seen as a source (for verification: its bytes must equal the output's)."""

    def __init__(self, item: tuple):
        self.file, self.chunks = "the MindSpore checkpoint", item[5]
