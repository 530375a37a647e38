"""ShopSynthesizer: new customers and their baskets, over the real catalog or over new products, as tables.

Fit learns three models: the purchase log's behaviour (purchases.py), and a catalog model of the customers
and one of the products (tabular and text, as one catalog). Sampling runs in this order:
1. the purchase model writes the new customers' baskets over the real products' places;
2. every rollup (a customer's orders, a product's units sold) is computed from those lines;
3. the customer model draws as many customers; each takes the place whose computed rollups are closest to
   its own drawn ones (slots.py), so what the real table ties to behaviour stays tied;
4. with `products="new"`, the product model draws as many new products (with their text) and each takes a
   real product's place the same way; the lines then point at the new products;
5. each row keeps its place's computed rollups: its lines are the place's, re-pointed one to one, so the
   tables agree exactly and every key resolves.
With `products="real"` the products are the real catalog: the log a team can share or train on without
real customers in it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from shopgen.bundle import SCHEMA, Bundle, open_bundle, write_bundle
from shopgen.errors import BundleError, ShopgenError
from shopgen.options import FitOptions, TextSampling
from shopgen.purchases import LogRoles, PurchaseModel, log_roles
from shopgen.rollups import compute_rollups
from shopgen.schema import CatalogSchema
from shopgen.shop_schema import ShopSchema
from shopgen.slots import match
from shopgen.synthesizer import CatalogSynthesizer, SampleStats

PRODUCTS = ("real", "new")
TABLES_DIR, PURCHASES_DIR, REAL_PRODUCTS = "tables", "purchases", "products.parquet"


def check_products(products: str) -> str:
    """`products` when it is real or new; else one line with the choices."""
    if products not in PRODUCTS:
        raise ShopgenError(f"products {products!r} is unknown; use real (the real catalog) or new (new products)")
    return products


@dataclass
class ShopSampleStats:
    """What one shop sample took: each generated table's SampleStats, and the customers drawn again
    because their whole product set equalled a real customer's."""

    tables: dict[str, SampleStats]
    customers_redrawn: int

    def to_dict(self) -> dict[str, Any]:
        return {"tables": {t: s.to_dict() for t, s in self.tables.items()}, "customers_redrawn": self.customers_redrawn}


class ShopSample(NamedTuple):
    """Every table of a sampled shop, parents first, and its stats: `tables, stats = synth.sample(n)`."""

    tables: dict[str, pd.DataFrame]
    stats: ShopSampleStats


class ShopSynthesizer:
    """Learns a shop of customers, products and their purchase log; samples new shops whose keys resolve."""

    def __init__(self, shop: ShopSchema, options: FitOptions | None = None, *, show_progress: bool = True,
                 **fields: Any) -> None:
        """`options` (or its fields as keywords) say how the customer and product tables are learned."""
        self.shop = shop
        self.options = (options or FitOptions()).replace(**fields)
        self.show_progress = show_progress

    def fit(self, frames: dict[str, pd.DataFrame]) -> ShopSynthesizer:
        """Learn the tables in `frames` (table name -> rows); returns self."""
        roles = log_roles(self.shop, frames)
        extra = set(self.shop.names) - {roles.table, roles.customers, roles.items}
        if extra:
            raise ShopgenError(f"shop {self.shop.name!r} has tables beside its customers, products and purchase log "
                               f"({sorted(extra)}); a shop of those three is what can be learned so far")
        self.products_ = frames[roles.items]
        self.table_models_: dict[str, CatalogSynthesizer] = {}
        for table in (roles.customers, roles.items) if self.options.products == "new" else (roles.customers,):
            schema = self.shop.table(table)  # rollups too: learned to place rows, then computed
            if schema.tabular_columns or schema.text_columns:
                self.table_models_[table] = CatalogSynthesizer(schema, self.options, show_progress=self.show_progress).fit(
                    frames[table][schema.names], source=table)
        self.purchases_ = PurchaseModel().fit(frames, self.shop)
        return self

    @property
    def roles(self) -> LogRoles:
        return self.purchases_.roles_

    def sample(self, n_customers: int, seed: int = 0, products: str = "real", text: TextSampling | None = None) -> ShopSample:
        """Every table of the shop, parents first: `n_customers` new customers and their purchase lines, over
        the real products (`products="real"`) or as many new ones (`"new"`, with text as `text` says).
        The same bundle, seed and text options give the same shop."""
        check_products(products)
        if products == "new" and self.roles.items not in self.table_models_:
            why = ("was fitted to keep the real catalog (products: real)" if self.options.products == "real"
                   else "has no column to learn")
            raise ShopgenError(f"the products table {self.roles.items!r} {why}; sample with products real, or refit "
                               "with products new")
        roles, shop = self.roles, self.shop
        seeds = np.random.default_rng(seed).integers(2**31, size=3)
        log = self.purchases_.sample(n_customers, seed=int(seeds[0]))
        customers = pd.DataFrame({shop.table(roles.customers).primary_key: range(1, n_customers + 1)})
        frames = compute_rollups({roles.items: self.products_, roles.customers: customers, roles.table: log}, shop)
        stats: dict[str, SampleStats] = {}
        if roles.customers in self.table_models_:
            frames[roles.customers], stats[roles.customers] = self._take_places(
                roles.customers, frames[roles.customers], n_customers, int(seeds[1]), None, keep_key=True)
        if products == "new":
            places = frames[roles.items]
            new, stats[roles.items] = self._take_places(roles.items, places, len(places), int(seeds[2]), text, keep_key=False)
            key = shop.table(roles.items).primary_key
            renamed = pd.Series(new[key].to_numpy(), index=pd.Index(places[key].astype(str)))
            frames[roles.items] = new
            frames[roles.table] = log.assign(**{roles.item: renamed.reindex(log[roles.item].astype(str)).to_numpy()})
        tables = {t: frames[t][[c for c in shop.table(t).names]].reset_index(drop=True) for t in shop.order}
        return ShopSample(tables, ShopSampleStats(stats, int(log.attrs.get("customers_redrawn", 0))))

    def _take_places(self, table: str, places: pd.DataFrame, n: int, seed: int, text: TextSampling | None,
                     keep_key: bool) -> tuple[pd.DataFrame, SampleStats]:
        """`n` rows drawn by the table's model, each in the place (row of `places`) closest to it; the place's
        key when `keep_key`, else the drawn row's own."""
        model = self.table_models_[table]
        drawn, stats = model.sample(n, seed=seed, text=text)
        chosen = drawn.iloc[match(model.schema, places, drawn)].reset_index(drop=True)
        key = self.shop.table(table).primary_key
        if keep_key:
            chosen[key] = places[key].to_numpy()
        # A place's rollups are the written ones: re-pointing lines one to one (a place's lines to the row that
        # took it) leaves every count, sum and extreme as the place had it, so nothing is computed twice.
        computed = {r.column for r in self.shop.rollups_of(table)}
        for column in self.shop.table(table).names:
            if column not in chosen or column in computed:
                chosen[column] = places[column].to_numpy()
        return chosen, stats

    # ---- persistence ---------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """The shop's model bundle: its schema, each table's model, the purchase model and the real products."""
        return write_bundle(path, self.write_files)

    def write_files(self, folder: Path) -> dict:
        (folder / SCHEMA).write_text(self.shop.to_yaml(), encoding="utf-8")
        tables = {}
        for i, (table, model) in enumerate(self.table_models_.items()):
            sub = folder / TABLES_DIR / str(i)  # numbered: a table's name never becomes a path
            sub.mkdir(parents=True)
            tables[table] = {"folder": f"{TABLES_DIR}/{i}", **model.write_files(sub)}
        self.purchases_.save_pretrained(folder / PURCHASES_DIR)
        self.products_.to_parquet(folder / REAL_PRODUCTS, index=False)
        return {"kind": "shop", "tables": tables, "options": {"tabular": self.options.tabular, "preset": self.options.preset,
                                                              "products": self.options.products}}

    @classmethod
    def load(cls, bundle: str | Path | Bundle, show_progress: bool = True) -> ShopSynthesizer:
        """Read a shop bundle (verified first, as CatalogSynthesizer.load does); nothing in it runs code."""
        opened = bundle if isinstance(bundle, Bundle) else open_bundle(bundle)
        if not opened.is_shop:
            raise ShopgenError(f"bundle {str(opened.path)!r} holds one catalog, not a shop; load it with CatalogSynthesizer")
        manifest = opened.manifest
        try:
            options = {k: str(v) for k, v in manifest["options"].items() if k in ("tabular", "preset", "products")}
            folders = {str(table): str(info["folder"]) for table, info in manifest["tables"].items()}
        except (KeyError, TypeError, AttributeError):
            raise BundleError(f"bundle {str(opened.path)!r} has no readable shop manifest; refit it") from None
        odd = [f for t, f in folders.items() if not re.fullmatch(rf"{TABLES_DIR}/\d+", f) or t not in opened.schema.names]
        if odd:
            raise BundleError(f"bundle {str(opened.path)!r} names a table folder {odd[0]!r} that is not its own; refit it")
        self = cls(opened.schema, FitOptions(**options).check(), show_progress=show_progress)
        self.table_models_ = {}
        for table, folder in folders.items():
            path = opened.path / folder
            self.table_models_[table] = CatalogSynthesizer.read_files(
                path, CatalogSchema.from_yaml(path / SCHEMA), manifest["tables"][table], show_progress)
        self.purchases_ = PurchaseModel.from_pretrained(opened.path / PURCHASES_DIR)
        self.products_ = pd.read_parquet(opened.path / REAL_PRODUCTS)
        return self

