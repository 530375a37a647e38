"""Named sizes for the two models, each bounded by a training-time budget measured on 2 CPU cores.

Budgets, not epoch counts, are the contract: a catalog ten times larger gets fewer epochs, not ten times
the wait. The sizes were chosen from throughputs measured on those cores (docs/text-model.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from shopgen.errors import ShopgenError


@dataclass(frozen=True)
class TabularPreset:
    epochs: int
    batch_size: int
    max_seconds: float
    max_categories: int  # categorical levels kept as themselves; rarer ones share one "other" level


@dataclass(frozen=True)
class TextPreset:
    n_layer: int
    n_embd: int
    n_head: int
    vocab_size: int
    block_size: int
    batch_size: int
    learning_rate: float
    max_epochs: int
    max_seconds: float
    dropout: float = 0.0  # a few epochs in a budget underfit; dropout's bernoulli alone was 8 % of a step
    unconditional_share: float = 0.1  # rows trained after an empty prompt, for classifier-free guidance
    field_balance: float = 0.5  # 0: every text token weighs the same in the loss; 1: every text field does
    lead_repeats: int = 0  # extra passes per epoch over each row cut after its first text field (docs/text-model.md: lead passes)
    rare_lead_boost: float = 0.0  # rows of rare condition levels get up to (1 + this) x lead_repeats (docs/text-model.md: lead passes)
    lead_next_tokens: int = 0  # lead passes also carry this many tokens of the second text field (docs/text-model.md: lead passes)


@dataclass(frozen=True)
class Preset:
    name: str
    tabular: TabularPreset
    text: TextPreset


PRESETS = {
    "fast": Preset(
        "fast",
        TabularPreset(epochs=150, batch_size=500, max_seconds=60, max_categories=30),
        TextPreset(n_layer=2, n_embd=128, n_head=4, vocab_size=4096, block_size=256, batch_size=16,
                   learning_rate=2e-3, max_epochs=10, max_seconds=110),
    ),
    "small": Preset(
        "small",
        TabularPreset(epochs=300, batch_size=500, max_seconds=600, max_categories=60),
        TextPreset(n_layer=4, n_embd=256, n_head=4, vocab_size=8192, block_size=384, batch_size=16,
                   learning_rate=2e-3, max_epochs=20, max_seconds=1200, lead_repeats=3,
                   rare_lead_boost=3.0, lead_next_tokens=32),
    ),
    "base": Preset(
        "base",
        TabularPreset(epochs=500, batch_size=500, max_seconds=1800, max_categories=100),
        TextPreset(n_layer=6, n_embd=384, n_head=6, vocab_size=8192, block_size=512, batch_size=16,
                   learning_rate=6e-4, max_epochs=30, max_seconds=3600, dropout=0.1),
    ),
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ShopgenError(f"unknown preset {name!r}; use one of {', '.join(PRESETS)}") from None
