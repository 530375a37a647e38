"""The GPT: GPT-2's architecture in one file, a config and the model.

`forward` trains and evaluates: the loss is fused with the vocabulary projection and taken over the
learnt positions only (loss.py). `decode` runs the same blocks a token at a time over a KV cache that its
caller keeps (generate/decoder.py), with the weight matmuls in the sampling precision (linear.py).

The tensors have GPT-2's names and layouts (a projection's weight is (in, out), as in Hugging Face's
Conv1D), so `save_pretrained` writes a directory `transformers` loads as GPT2LMHeadModel, and
`from_pretrained` reads a GPT-2 checkpoint (a `--text-base`) as well as a bundle's own model.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel
from transformers.utils import logging as transformers_logging

from shopgen.text import kernels
from shopgen.text.linear import prepare, project
from shopgen.text.loss import IGNORE, head_cross_entropy

transformers_logging.set_verbosity_error()  # its per-file progress bars and notes are not the user's business
transformers_logging.disable_progress_bar()

# Hugging Face's names for GPT-2's activations: the tanh-approximated GELU (two spellings) and the exact one
HF_GELU = {"gelu_new": "tanh", "gelu_pytorch_tanh": "tanh", "gelu": "none"}
INIT_STD = 0.02  # GPT-2's initializer range


@dataclass
class GPTConfig:
    vocab_size: int
    block_size: int = 256  # positions
    n_layer: int = 2
    n_head: int = 2
    n_embd: int = 128
    n_inner: int | None = None  # the MLP's width; None: 4 * n_embd
    dropout: float = 0.0
    layer_norm_epsilon: float = 1e-5
    gelu: str = "tanh"  # "tanh": GPT-2's approximation; "none": the exact GELU
    end_id: int | None = None  # the end-of-text token, GPT-2's bos and eos
    pad_id: int | None = None

    def to_hf(self) -> GPT2Config:
        return GPT2Config(
            vocab_size=self.vocab_size, n_positions=self.block_size, n_layer=self.n_layer, n_head=self.n_head,
            n_embd=self.n_embd, n_inner=self.n_inner, layer_norm_epsilon=self.layer_norm_epsilon,
            resid_pdrop=self.dropout, embd_pdrop=self.dropout, attn_pdrop=self.dropout,
            activation_function="gelu_pytorch_tanh" if self.gelu == "tanh" else "gelu",
            bos_token_id=self.end_id, eos_token_id=self.end_id, pad_token_id=self.pad_id,
            architectures=["GPT2LMHeadModel"],
        )

    @classmethod
    def from_hf(cls, config: object) -> GPTConfig | None:
        """This config for a Hugging Face GPT-2 config, or None for any config this GPT does not compute
        exactly (another architecture, or GPT-2 with a variant's switches on)."""
        get = partial(getattr, config)
        plain = (
            get("model_type", None) == "gpt2" and get("activation_function", None) in HF_GELU
            and get("scale_attn_weights", True) and not get("scale_attn_by_inverse_layer_idx", False)
            and not get("reorder_and_upcast_attn", False) and not get("add_cross_attention", False)
            and get("tie_word_embeddings", True)
        )
        if not plain:
            return None
        return cls(
            vocab_size=config.vocab_size, block_size=config.n_positions, n_layer=config.n_layer,
            n_head=config.n_head, n_embd=config.n_embd, n_inner=get("n_inner", None),
            dropout=get("resid_pdrop", 0.0), layer_norm_epsilon=get("layer_norm_epsilon", 1e-5),
            gelu=HF_GELU[config.activation_function], end_id=get("eos_token_id", None), pad_id=get("pad_token_id", None),
        )


class Projection(nn.Module):
    """`x @ weight + bias`, weight (in, out): Hugging Face GPT-2's Conv1D layout, so checkpoints load as they are."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight).view(*x.shape[:-1], self.weight.shape[1])


class Attention(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_attn = Projection(config.n_embd, 3 * config.n_embd)  # queries, keys and values of every head
        self.c_proj = Projection(config.n_embd, config.n_embd)


class MLP(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        inner = config.n_inner or 4 * config.n_embd
        self.c_fc = Projection(config.n_embd, inner)
        self.c_proj = Projection(inner, config.n_embd)


class Block(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.attn = Attention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.mlp = MLP(config)

    @property
    def projections(self) -> tuple[Projection, ...]:
        """In the order a block applies them: attention in, attention out, MLP in, MLP out."""
        return self.attn.c_attn, self.attn.c_proj, self.mlp.c_fc, self.mlp.c_proj


# (layer, the layer's fused queries, keys and values (rows, tokens, 3 * width)) -> attention output with the
# heads merged (rows, tokens, width)
Attend = Callable[[int, torch.Tensor], torch.Tensor]


@dataclass
class DecodingWeights:
    """Each block's four projections and the vocabulary head as callables, in one sampling precision."""

    layers: list[tuple[Callable[[torch.Tensor], torch.Tensor], ...]]
    head: Callable[[torch.Tensor], torch.Tensor]


class GPT(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),  # also the output head (tied, as GPT-2's)
            wpe=nn.Embedding(config.block_size, config.n_embd),
            h=nn.ModuleList(Block(config) for _ in range(config.n_layer)),
            ln_f=nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon),
        ))
        self.drop = nn.Dropout(config.dropout)
        for name, p in self.named_parameters():
            if name.endswith("weight") and p.dim() == 2:
                # GPT-2's init: the projections into the residual stream scaled down with depth
                std = INIT_STD / math.sqrt(2 * config.n_layer) if name.endswith("c_proj.weight") else INIT_STD
                nn.init.normal_(p, std=std)

    # ---- training ------------------------------------------------------------------------------
    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                weights: torch.Tensor | None = None) -> torch.Tensor:
        """With `targets` (the token after each position, IGNORE where nothing is learnt), the loss: the mean
        over learnt positions, or their `weights`-weighted mean. Without, the logits at every position."""
        x = self.drop(self.transformer.wte(idx) + self.transformer.wpe(torch.arange(idx.shape[1])))
        x = self.blocks(x, self.causal_attention, [block.projections for block in self.transformer.h])
        head = self.transformer.wte.weight
        if targets is None:
            return x @ head.T
        keep = targets != IGNORE
        return head_cross_entropy(x[keep], head, targets[keep], None if weights is None else weights[keep])

    def blocks(self, x: torch.Tensor, attend: Attend, layers: list[tuple], stop_at_last_attention: bool = False) -> torch.Tensor:
        """The transformer blocks and the final layer norm over embedded tokens `x` (rows, tokens, width).

        `stop_at_last_attention`: return once the last block's attention has run (its cache is written and
        nothing after it is needed); the result is then not the blocks' output."""
        last = len(self.transformer.h) - 1
        for i, (block, (attn_in, attn_out, mlp_in, mlp_out)) in enumerate(zip(self.transformer.h, layers)):
            att = attend(i, attn_in(block.ln_1(x)))
            if stop_at_last_attention and i == last:
                return x
            x = x + self.drop(attn_out(att))
            x = x + self.drop(mlp_out(self.gelu(mlp_in(block.ln_2(x)))))
        return self.transformer.ln_f(x)

    def causal_attention(self, layer: int, qkv: torch.Tensor) -> torch.Tensor:
        """Each position attends to itself and the positions before it (training rows are right-padded, so
        padding is never attended by a learnt position)."""
        q, k, v = self.heads(qkv)
        p = self.config.dropout if self.training else 0.0
        if torch.is_autocast_enabled("cpu"):
            # the plain matmul-softmax under bf16 autocast: it runs on bf16 matmuls, where the CPU's SDPA
            # backward was a fifth of a bf16 step (a `small` step 0.87x the time); in fp32 SDPA is the faster
            n = q.shape[2]
            scores = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5
            future = torch.ones(n, n, dtype=torch.bool).triu(1)
            att = F.dropout(scores.masked_fill(future, float("-inf")).softmax(-1), p, self.training) @ v
        else:
            att = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=p)
        return merge_heads(att)

    def heads(self, qkv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Fused (rows, tokens, 3 * width) -> queries, keys, values, each (rows, heads, tokens, head width)."""
        b, n, _ = qkv.shape
        heads = self.config.n_head
        return tuple(z.view(b, n, heads, -1).transpose(1, 2) for z in qkv.split(self.config.n_embd, dim=2))

    def gelu(self, x: torch.Tensor) -> torch.Tensor:
        """GPT-2's activation; its tanh form from gelu.c where the kernels are built, forward and backward in one
        pass each (torch's elementwise ops were 8 % of a training step), in place when nothing needs the input."""
        lib = kernels.kernel() if self.config.gelu == "tanh" else None
        if lib is None or x.dtype != torch.float32 or not x.is_contiguous():
            return F.gelu(x, approximate=self.config.gelu)
        return kernels.gelu_tanh(lib, x) if torch.is_grad_enabled() else kernels.gelu_tanh_(lib, x)

    # ---- decoding ------------------------------------------------------------------------------
    def decoding_weights(self, precision: str = "fp32", head_bias: torch.Tensor | None = None) -> DecodingWeights:
        """The projections in `precision` ("fp32", "bf16" or "int8"; linear.py), prepared once for a sampling
        call; `head_bias` is added to every logit (the sampler's ban list: 0 or -inf per token)."""
        def prepared(weight: torch.Tensor, bias: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
            return partial(project, projection=prepare(weight, bias, precision))

        head = self.transformer.wte.weight
        bias = torch.zeros(head.shape[0]) if head_bias is None else head_bias
        return DecodingWeights(
            layers=[tuple(prepared(m.weight, m.bias) for m in block.projections) for block in self.transformer.h],
            head=prepared(head.t(), bias),
        )

    @torch.no_grad()
    def decode(self, tokens: torch.Tensor, positions: torch.Tensor, attend: Attend, weights: DecodingWeights,
               logits: bool = True) -> torch.Tensor | None:
        """Run `tokens` at `positions` (same shape) through the blocks, `attend` reading and writing the
        caller's KV cache; the next-token logits at each, or None when `logits` is False (a prefill that only
        writes the cache stops after the last block's attention: its MLP was 19 % of a prefill's matmuls)."""
        x = self.transformer.wte(tokens) + self.transformer.wpe(positions)
        x = self.blocks(x, attend, weights.layers, stop_at_last_attention=not logits)
        return weights.head(x) if logits else None

    # ---- Hugging Face directories --------------------------------------------------------------
    def save_pretrained(self, directory: str | Path) -> None:
        """A GPT-2 directory (config.json, model.safetensors) that transformers' GPT2LMHeadModel loads."""
        self.to_hf().save_pretrained(str(directory))

    def to_hf(self) -> GPT2LMHeadModel:
        """Hugging Face's GPT2LMHeadModel with these weights (a copy), for its `generate` and its ecosystem."""
        hf = GPT2LMHeadModel(self.config.to_hf())
        missing, unexpected = hf.load_state_dict(self.state_dict(), strict=False)
        if set(missing) - {"lm_head.weight"} or unexpected:
            raise RuntimeError(f"GPT-2's layout changed: missing {missing}, unexpected {unexpected}")
        hf.tie_weights()
        return hf.eval()

    @classmethod
    def from_hf(cls, hf: nn.Module) -> GPT:
        """The same weights as a loaded Hugging Face GPT-2 (ValueError for a model this GPT does not compute)."""
        config = GPTConfig.from_hf(getattr(hf, "config", None))
        if config is None:
            raise ValueError("not a plain GPT-2 model")
        model = cls(config)
        model.load_state_dict({k: v for k, v in hf.state_dict().items() if k.startswith("transformer.")
                               and not k.endswith((".attn.bias", ".attn.masked_bias"))})  # old causal-mask buffers
        return model.eval()

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> GPT:
        return cls.from_hf(GPT2LMHeadModel.from_pretrained(str(directory), local_files_only=True, dtype=torch.float32))


def merge_heads(att: torch.Tensor) -> torch.Tensor:
    """(rows, heads, tokens, head width) -> (rows, tokens, heads * head width)."""
    b, _, n, _ = att.shape
    return att.transpose(1, 2).reshape(b, n, -1)
