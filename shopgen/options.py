"""What a user may ask of `fit` and of the text in `sample`, each as one typed object.

The command line, the YAML pipeline and the Airflow operators all build these objects and hand them down
unchanged, so an option exists in one place: a new one is a field here, and every front door has it.
`check()` refuses a bad value in one line naming the option, before any model is loaded; it imports
nothing heavy, so a typo fails in a fraction of a second.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from shopgen.errors import OptionError, ShopgenError
from shopgen.limits import check_rows
from shopgen.presets import get_preset
from shopgen.text import SAMPLING_PRECISIONS, TRAINING_PRECISIONS


def _one_of(value: str, choices: tuple[str, ...], option: str) -> None:
    if value not in choices:
        raise OptionError(option, f"{value!r} is unknown; use one of {', '.join(choices)}")


def _at_least(value: float | None, low: float, option: str, example: str) -> None:
    if value is not None and not value >= low:
        raise OptionError(option, f"{value!r} is below {low:g}; use e.g. {example}")


@dataclass(frozen=True)
class FitOptions:
    """How `fit` learns: which tabular model, the preset's sizes and budgets, and the overrides of both.

    `tabular`: ctgan, tvae, copula, or auto (each fitted on 80 % of the rows and judged on the rest).
    `preset`: fast, small or base. The minutes are time budgets (default: the preset's); `epochs` and
    `text_epochs` cap epochs. `text_base`: a local Hugging Face causal-LM checkpoint to fine-tune.
    `text_precision`: the text model's training floats, fp32 (default), bf16 or auto.
    `products` (a shop): new also learns the products table, so a sample can be a whole new shop; real keeps
    only the real catalog, for new customers over it, without the time a product and text model take.
    """

    tabular: str = "ctgan"
    preset: str = "fast"
    epochs: int | None = None
    batch_size: int | None = None
    tabular_minutes: float | None = None
    max_train_minutes: float | None = None
    text_epochs: int | None = None
    text_base: str | None = None
    text_precision: str = "fp32"
    seed: int = 0
    products: str = "new"

    def check(self) -> FitOptions:
        from pathlib import Path

        from shopgen.tabular import KINDS  # pandas: not loaded where options are only built (an Airflow DAG)

        _one_of(self.tabular, KINDS, "tabular")
        get_preset(self.preset)
        _one_of(self.text_precision, TRAINING_PRECISIONS, "text_precision")
        _one_of(self.products, ("new", "real"), "products")
        _at_least(self.epochs, 1, "epochs", "epochs 100")
        _at_least(self.batch_size, 10, "batch_size", "batch_size 500")
        _at_least(self.tabular_minutes, 0.05, "tabular_minutes", "tabular_minutes 2")
        _at_least(self.max_train_minutes, 0.05, "max_train_minutes", "max_train_minutes 5")
        _at_least(self.text_epochs, 1, "text_epochs", "text_epochs 3")
        check_rows(1, self.seed)
        if self.text_base is not None and not Path(self.text_base).is_dir():
            raise OptionError("text_base", f"{self.text_base!r} is not a directory; give a local save_pretrained checkpoint")
        return self

    def replace(self, **changes: object) -> FitOptions:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class TextSampling:
    """How `sample` writes text; None keeps the bundle's own setting.

    `temperature`, `top_p`: the draw. `guidance`: how hard the text follows its row (classifier-free
    guidance; 0 is off). `guided_tokens`: how many of the description's first tokens guidance steers
    (0: the name only). `guide_all_fields`: guidance steers every text field, for ~1.4x the text time.
    `workers`: processes writing text, one thread each (default: one per core torch uses). `precision`:
    the decoder's matmuls, fp32, bf16, int8 or auto (the bundle's default: the faster narrow type where a
    timing kept per machine finds it 1.25x fp32's speed). `allow_copies`: keep texts that copy a
    training text instead of redrawing them.
    """

    temperature: float | None = None
    top_p: float | None = None
    guidance: float | None = None
    guided_tokens: int | None = None
    guide_all_fields: bool = False
    workers: int | None = None
    precision: str | None = None
    allow_copies: bool = False

    def check(self) -> TextSampling:
        if self.temperature is not None and not 0.05 <= self.temperature <= 5.0:
            raise OptionError("temperature", f"{self.temperature!r} is outside 0.05..5; use e.g. 1.0")
        if self.top_p is not None and not 0.05 <= self.top_p <= 1.0:
            raise OptionError("top_p", f"{self.top_p!r} is outside 0.05..1; use e.g. 0.8")
        _at_least(self.guidance, 0, "guidance", "0 (off) or 1.0")
        _at_least(self.guided_tokens, 0, "guided_tokens", "0 (the name only) or 32")
        _at_least(self.workers, 1, "text_workers", "1 (sample in this process) or more")
        if self.precision is not None:
            _one_of(self.precision, SAMPLING_PRECISIONS, "text_precision")
        return self

    def replace(self, **changes: object) -> TextSampling:
        return dataclasses.replace(self, **changes)


# the name each TextSampling field has as a CLI flag (dashes for underscores), a YAML key and an operator
# argument, where it differs from the field: beside a step's other options these two need the "text_"
TEXT_KEYS = {"workers": "text_workers", "precision": "text_precision"}


def text_key(field: str) -> str:
    return TEXT_KEYS.get(field, field)


def parse_gates(specs: list[str] | None, option: str = "--min") -> dict[str, float]:
    """['quality=0.8', ...] -> {'quality': 0.8}; a malformed spec is bad input."""
    out: dict[str, float] = {}
    for spec in specs or []:
        name, sep, value = str(spec).partition("=")
        name = name.strip()
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not sep or not name or not math.isfinite(number):
            raise ShopgenError(f"{option} {spec!r} is not SCORE=NUMBER; write e.g. {option} quality=0.8")
        out[name] = number
    return out
