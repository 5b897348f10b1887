"""CPU stand-ins for the Ascend-only kernels of MindFormers' incremental inference, from standard MindSpore ops.

MindFormers' ``use_past`` path (``InferAttention``: rotary embedding, then ``PagedAttentionMgr`` writing the new
keys/values into the block cache and attending over it) calls three fused Ascend kernels: ``ApplyRotaryPosEmb``,
``ReshapeAndCache`` and ``PagedAttention``. ``install()`` replaces the methods that call them with the same math
in standard ops, on MindSpore's CPU target only (``backends/ascend/session.py`` calls it there); on Ascend
MindFormers' fused kernels run untouched. Everything else (the prefill attention, the block tables, the
``batch_valid_length`` bookkeeping, the model) is MindFormers' own.

- rotary: rotate-half RoPE, ``x * cos + rotate_half(x) * sin`` per head, with MindFormers' ``freqs_cos``/``freqs_sin``
  (prefill: ``[batch * seq, head_dim]``; decode: ``[batch, head_dim]``, already gathered at each row's position);
- cache write: every token's key and value rows scattered into the cache at its slot (``slot // block_size``,
  ``slot % block_size``); mindcode sends padding to a scratch block that no sequence reads;
- paged attention (one new token per row): the row's blocks gathered by ``block_tables``, positions at or past
  ``batch_valid_length`` masked, softmax, key/value heads repeated for grouped-query attention.
"""

from __future__ import annotations

from mindspore import ops
from mindspore import dtype as mstype

_INSTALLED = False


def rotary_construct(self, query, key, freqs_cis, batch_valid_length):
    """``InferRotaryEmbedding.construct`` (``ApplyRotaryPosEmb``) in standard ops."""
    freqs_cos, freqs_sin, _ = freqs_cis
    bs, seq, _ = query.shape
    head_dim = freqs_cos.shape[-1]
    cos = ops.reshape(freqs_cos, (bs, seq, 1, head_dim)).astype(query.dtype)
    sin = ops.reshape(freqs_sin, (bs, seq, 1, head_dim)).astype(query.dtype)
    half = head_dim // 2
    q = ops.reshape(query, (bs, seq, -1, head_dim))
    k = ops.reshape(key, (bs, seq, -1, head_dim))
    q_rot = ops.concat((-q[:, :, :, half:], q[:, :, :, :half]), -1)
    k_rot = ops.concat((-k[:, :, :, half:], k[:, :, :, :half]), -1)
    q = q * cos + q_rot * sin
    k = k * cos + k_rot * sin
    return ops.reshape(q, query.shape), ops.reshape(k, key.shape)


def cache_construct(self, key, value, slot_mapping, batch_valid_length=None):
    """``PagedAttentionMgr.construct`` (``ReshapeAndCache``): write each token's key and value at its slot, in place
    (a scatter into the cache parameter: the cost is the tokens written, not the cache's size)."""
    _blocks, block_size, kv_heads, head_dim = self.key_cache.shape
    slots = ops.reshape(slot_mapping, (-1,)).astype(mstype.int32)
    where = ops.stack((slots // block_size, slots % block_size), -1)  # [tokens, 2]: block, offset
    new_k = ops.reshape(key, (-1, kv_heads, head_dim)).astype(self.key_cache.dtype)
    new_v = ops.reshape(value, (-1, kv_heads, head_dim)).astype(self.value_cache.dtype)
    k_done = ops.scatter_nd_update(self.key_cache, where, new_k)
    v_done = ops.scatter_nd_update(self.value_cache, where, new_v)
    return ops.depend(key, ops.depend(k_done, v_done))


def paged_attn(self, query, batch_valid_length, block_tables, attn_mask=None, q_seq_lens=None):
    """``PagedAttentionMgr.paged_attn`` (``PagedAttention``): one query token per row over its cached tokens."""
    blocks, block_size, kv_heads, head_dim = self.key_cache.shape
    bs = query.shape[0]
    table = block_tables.astype(mstype.int32)
    width = table.shape[1] * block_size
    k = ops.reshape(ops.gather(self.key_cache, table, 0), (bs, width, kv_heads, head_dim))
    v = ops.reshape(ops.gather(self.value_cache, table, 0), (bs, width, kv_heads, head_dim))
    repeat = self.n_heads // kv_heads
    k = ops.repeat_interleave(k, repeat, 2).astype(query.dtype)  # grouped-query attention: heads share KV heads
    v = ops.repeat_interleave(v, repeat, 2).astype(query.dtype)
    q = ops.reshape(query, (bs, 1, self.n_heads, head_dim)).transpose(0, 2, 1, 3)  # [bs, heads, 1, d]
    scores = ops.matmul(q, k.transpose(0, 2, 3, 1)) * self.scale_value  # [bs, heads, 1, width]
    positions = ops.arange(0, width, dtype=mstype.int32).reshape((1, 1, 1, width))
    valid = positions < ops.reshape(batch_valid_length.astype(mstype.int32), (bs, 1, 1, 1))
    scores = ops.where(valid, scores.astype(mstype.float32), ops.full_like(scores, -1e9, dtype=mstype.float32))
    probs = ops.softmax(scores, -1).astype(query.dtype)
    out = ops.matmul(probs, v.transpose(0, 2, 1, 3))  # [bs, heads, 1, d]
    return ops.reshape(out.transpose(0, 2, 1, 3), (bs, 1, self.n_heads * head_dim))


def install() -> None:
    """Put the stand-ins in place of MindFormers' Ascend-kernel calls (once per process; CPU target only)."""
    global _INSTALLED
    if _INSTALLED:
        return
    from mindformers.modules.infer_attention import InferRotaryEmbedding
    from mindformers.modules.paged_attention_mgr import PagedAttentionMgr

    InferRotaryEmbedding.construct = rotary_construct
    PagedAttentionMgr.construct = cache_construct
    PagedAttentionMgr.paged_attn = paged_attn
    _INSTALLED = True

