"""Regenerates tests/fixtures/golden_moe_<arch>_<quant>.npz: transformers logits for the tiny
random GGUFs of tests/helpers/tiny_moe_gguf.py (qwen3, qwen3moe, qwen2moe, llama+experts =
Mixtral, olmoe), computed from the same file's weights dequantized by the `gguf` package.

Run with `make golden` (needs the `reference` extra):
    python scripts/make_moe_golden.py [--arch ARCH ...]

The transformers config is built from the GGUF metadata; the router's top-k renormalisation is
what llama.cpp does per architecture when the file does not record expert_weights_norm (its
build_moe_ffn: qwen3moe and llama/Mixtral renormalise, qwen2moe and olmoe do not). For `llama`
the converter's q/k row permutation is undone. Each fixture holds NUM_SEQS x SEQ_LEN random token
ids and the reference logits (float16) at every position."""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import transformers as T
from gguf import GGUFReader, quants

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.helpers.tiny_moe_gguf import TINY_ARCHS, unpermute_qk, write_tiny_model  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
NUM_SEQS, SEQ_LEN, TOKEN_SEED = 4, 32, 1234
# (arch, quant) pairs with a fixture; q4_0 once, on the family the benchmark models.
CASES = [(a, q) for a in TINY_ARCHS for q in ("f32", "q8_0")] + [("qwen3moe", "q4_0")]
NORM_TOPK_DEFAULT = {"qwen3moe": True, "llama": True, "qwen2moe": False, "olmoe": False}
HF_CLASSES = {
    "qwen3": (T.Qwen3Config, T.Qwen3ForCausalLM),
    "qwen3moe": (T.Qwen3MoeConfig, T.Qwen3MoeForCausalLM),
    "qwen2moe": (T.Qwen2MoeConfig, T.Qwen2MoeForCausalLM),
    "llama": (T.MixtralConfig, T.MixtralForCausalLM),
    "olmoe": (T.OlmoeConfig, T.OlmoeForCausalLM),
}


def read_gguf(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    reader = GGUFReader(str(path))
    meta = {name: field.contents() for name, field in reader.fields.items()
            if not name.startswith("tokenizer.")}
    meta["vocab_size"] = len(reader.fields["tokenizer.ggml.tokens"].contents())
    tensors = {t.name: np.asarray(quants.dequantize(t.data, t.tensor_type), dtype=np.float32)
               for t in reader.tensors}
    return meta, tensors


def hf_config(arch: str, meta: dict):
    def key(name, default=None):
        return meta.get(f"{arch}.{name}", default)
    num_experts = key("expert_count", 0)
    common = dict(
        vocab_size=meta["vocab_size"], hidden_size=key("embedding_length"),
        num_hidden_layers=key("block_count"), num_attention_heads=key("attention.head_count"),
        num_key_value_heads=key("attention.head_count_kv"),
        rms_norm_eps=key("attention.layer_norm_rms_epsilon"),
        max_position_embeddings=key("context_length"), tie_word_embeddings=False,
        rope_parameters={"rope_type": "default", "rope_theta": key("rope.freq_base")},
        attn_implementation="eager")
    if arch in ("qwen3", "qwen3moe"):
        common["head_dim"] = key("attention.key_length")
    if not num_experts:
        return T.Qwen3Config(intermediate_size=key("feed_forward_length"), **common)
    norm = key("expert_weights_norm", NORM_TOPK_DEFAULT[arch])
    moe = dict(num_experts_per_tok=key("expert_used_count"))
    if arch == "llama":
        return T.MixtralConfig(num_local_experts=num_experts,
                               intermediate_size=key("expert_feed_forward_length"), **moe, **common)
    moe.update(num_experts=num_experts, norm_topk_prob=norm)
    if arch == "olmoe":
        return T.OlmoeConfig(intermediate_size=key("expert_feed_forward_length"), **moe, **common)
    moe["moe_intermediate_size"] = key("expert_feed_forward_length")
    if arch == "qwen2moe":
        moe["shared_expert_intermediate_size"] = key("expert_shared_feed_forward_length")
        moe["qkv_bias"] = True
    return HF_CLASSES[arch][0](**moe, **common)


def hf_state_dict(arch: str, meta: dict, t: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    num_heads = meta[f"{arch}.attention.head_count"]
    num_kv_heads = meta[f"{arch}.attention.head_count_kv"]
    sd = {"model.embed_tokens.weight": t["token_embd.weight"], "model.norm.weight":
          t["output_norm.weight"], "lm_head.weight": t["output.weight"]}
    for i in range(meta[f"{arch}.block_count"]):
        g, h = f"blk.{i}.", f"model.layers.{i}."
        sd[h + "input_layernorm.weight"] = t[g + "attn_norm.weight"]
        sd[h + "post_attention_layernorm.weight"] = t[g + "ffn_norm.weight"]
        for ours, theirs in (("q", "q_proj"), ("k", "k_proj"), ("v", "v_proj"), ("output", "o_proj")):
            w = t[g + f"attn_{ours}.weight"]
            if arch == "llama" and ours in "qk":
                w = unpermute_qk(w, num_heads if ours == "q" else num_kv_heads)
            sd[h + f"self_attn.{theirs}.weight"] = w
            if g + f"attn_{ours}.bias" in t:
                sd[h + f"self_attn.{theirs}.bias"] = t[g + f"attn_{ours}.bias"]
        for ours in ("q", "k"):
            if g + f"attn_{ours}_norm.weight" in t:
                sd[h + f"self_attn.{ours}_norm.weight"] = t[g + f"attn_{ours}_norm.weight"]
        if g + "ffn_gate_inp.weight" not in t:
            for p in ("gate", "up", "down"):
                sd[h + f"mlp.{p}_proj.weight"] = t[g + f"ffn_{p}.weight"]
            continue
        sd[h + "mlp.gate.weight"] = t[g + "ffn_gate_inp.weight"]
        sd[h + "mlp.experts.gate_up_proj"] = np.concatenate(
            [t[g + "ffn_gate_exps.weight"], t[g + "ffn_up_exps.weight"]], axis=1)
        sd[h + "mlp.experts.down_proj"] = t[g + "ffn_down_exps.weight"]
        if g + "ffn_gate_shexp.weight" in t:
            for p in ("gate", "up", "down"):
                sd[h + f"mlp.shared_expert.{p}_proj.weight"] = t[g + f"ffn_{p}_shexp.weight"]
            sd[h + "mlp.shared_expert_gate.weight"] = t[g + "ffn_gate_inp_shexp.weight"].reshape(1, -1)
    return {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in sd.items()}


def make_fixture(arch: str, quant: str, workdir: Path) -> Path:
    path = write_tiny_model(workdir / f"{arch}-{quant}.gguf", arch, quant)
    meta, tensors = read_gguf(path)
    config = hf_config(arch, meta)
    model = HF_CLASSES[arch][1](config).eval()
    state = hf_state_dict(arch, meta, tensors)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise SystemExit(f"{arch}: weight mapping incomplete: missing {missing}, unexpected {unexpected}")
    rng = np.random.default_rng(TOKEN_SEED)
    token_ids = rng.integers(0, meta["vocab_size"], size=(NUM_SEQS, SEQ_LEN)).astype(np.int32)
    with torch.no_grad():
        logits = model(torch.from_numpy(token_ids).long()).logits.float().numpy()
    out = FIXTURES / f"golden_moe_{arch}_{quant}.npz"
    info = {"command": f"python scripts/make_moe_golden.py --arch {arch}", "arch": arch,
            "quant": quant, "transformers": T.__version__, "hf_class": type(model).__name__,
            "norm_topk_prob": getattr(config, "norm_topk_prob", None)}
    np.savez_compressed(out, token_ids=token_ids, logits=logits.astype(np.float16),
                        meta=np.array(json.dumps(info)))
    print(f"{out.name}: {type(model).__name__} logits {logits.shape}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", action="append", choices=sorted(TINY_ARCHS))
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        for arch, quant in CASES:
            if not args.arch or arch in args.arch:
                make_fixture(arch, quant, Path(tmp))


if __name__ == "__main__":
    main()
