"""ShopSynthesizer: new customers and their baskets over a real catalog, as a whole shop of tables.

The customers' own columns (a country) come from a catalog model of the customer table, their purchases
from the purchase model (purchases.py), and every rollup (a customer's orders, a product's units sold) is
computed from the generated purchases, so the tables agree with each other and every key resolves. The
products are the real catalog: this is the log a team can share or train on without real customers in it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pandas as pd

from shopgen.errors import ShopgenError
from shopgen.options import FitOptions
from shopgen.purchases import PurchaseModel, log_roles
from shopgen.rollups import compute_rollups
from shopgen.schema import CatalogSchema
from shopgen.shop_schema import ShopSchema
from shopgen.synthesizer import CatalogSynthesizer

CUSTOMER_OPTIONS = FitOptions(tabular="copula", preset="fast")  # a customer table is a few plain columns


class ShopSynthesizer:
    def __init__(self, shop: ShopSchema, options: FitOptions | None = None, *, show_progress: bool = True,
                 **fields: Any) -> None:
        self.shop = shop
        self.options = (options or CUSTOMER_OPTIONS).replace(**fields) if fields else (options or CUSTOMER_OPTIONS)
        self.show_progress = show_progress

    def fit(self, frames: dict[str, pd.DataFrame]) -> ShopSynthesizer:
        roles = self.roles_ = log_roles(self.shop, frames)
        extra = set(self.shop.names) - {roles.table, roles.customers, roles.items}
        if extra:
            raise ShopgenError(f"shop {self.shop.name!r} has tables beside its customers, products and purchase log "
                               f"({sorted(extra)}); a shop of those three is what can be learned so far")
        self.products_ = frames[roles.items]
        learned = own_columns(self.shop, roles.customers)
        self.customer_model_ = None
        if learned.tabular_columns or learned.text_columns:
            rows = frames[roles.customers][learned.names]
            self.customer_model_ = CatalogSynthesizer(learned, self.options, show_progress=self.show_progress).fit(
                rows, source=roles.customers)
        self.purchases_ = PurchaseModel().fit(frames, self.shop)
        return self

    def sample(self, n_customers: int, seed: int = 0) -> dict[str, pd.DataFrame]:
        """Every table of the shop, parents first: the real products, `n_customers` new customers, their lines."""
        roles = self.roles_
        log = self.purchases_.sample(n_customers, seed=seed)
        key = self.shop.table(roles.customers).primary_key
        customers = pd.DataFrame({key: range(1, n_customers + 1)})
        if self.customer_model_ is not None:
            drawn = self.customer_model_.sample(n_customers, seed=seed).catalog
            own = [c for c in drawn.columns if c != key]
            customers[own] = drawn[own].to_numpy()
        frames = compute_rollups({roles.items: self.products_, roles.customers: customers, roles.table: log}, self.shop)
        customers = frames[roles.customers]
        frames[roles.customers] = customers[[c for c in self.shop.table(roles.customers).names if c in customers]]
        return {t: frames[t] for t in self.shop.order}


def own_columns(shop: ShopSchema, table: str) -> CatalogSchema:
    """A table's schema without its rollups (computed, not learned), nor the rules and conditions naming them."""
    schema = shop.table(table)
    computed = {r.column for r in shop.rollups_of(table)}
    columns = tuple(replace(c, conditioned_on=tuple(x for x in c.conditioned_on if x not in computed))
                    for c in schema.columns if c.name not in computed)
    rules = tuple(r for r in schema.rules if not {r.high, r.low} & computed)
    return replace(schema, columns=columns, rules=rules)
