"""The synthetic demo product catalog: ``sample_data/products.csv`` and what ``shopgen demo`` learns.

The project needs a small, shareable catalog with realistic structure to demo
and test against, and copying real retail data is not an option. This script
invents one from scratch: every category, brand, name and description comes
from the vocabularies below. Numbers and text are deliberately conditioned on
each other (price on category and brand, units sold on price and brand
popularity, rating on brand quality, wording on category, brand and price
tier), so that models trained on the file have real signal to learn and tests
can check it.

The generator is seeded, so ``write_csv(build_catalog(), path)`` writes the same
bytes every time, offline, from an installed package as from a checkout.
Only numpy and pandas are needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20261122
N_PRODUCTS = 2400
COLUMNS = [
    "sku",
    "category",
    "brand",
    "price",
    "list_price",
    "units_sold",
    "rating",
    "name",
    "description",
]

TIERS = ("budget", "mid", "premium")
TIER_ADJECTIVES = {
    "budget": ("Basic", "Everyday", "Value", "Essentials", "Simple"),
    "mid": ("Classic", "Comfort", "Select", "Plus", "Original"),
    "premium": ("Pro", "Signature", "Artisan", "Elite", "Reserve"),
}

# Opening sentence, chosen by price tier. Placeholders are filled from the
# row's category (noun, features, uses).
OPENERS = {
    "budget": (
        "An affordable everyday {noun} with {feature}, made for {use}.",
        "Great value: this {noun} offers {feature} without the premium price.",
        "A no-frills {noun} for {use}, with {feature} at a budget-friendly price.",
        "This simple {noun} keeps things practical, with {feature} for {use}.",
    ),
    "mid": (
        "A dependable {noun} with {feature} and {feature2}, well suited to {use}.",
        "Balanced for {use}, this {noun} offers {feature} and solid build quality.",
        "A versatile {noun} featuring {feature}, ready for {use}.",
        "This well-made {noun} combines {feature} and {feature2} for {use}.",
    ),
    "premium": (
        "A professional-grade {noun} crafted with {feature} and {feature2} for {use}.",
        "Meticulously crafted, this {noun} brings {feature} to {use}.",
        "Our finest {noun}: {feature}, {feature2}, and premium materials built for {use}.",
        "Engineered without compromise, this {noun} offers {feature} for {use}.",
    ),
}

# Sentence that carries the brand's signature phrase (which starts with the
# brand's possessive, so it is always capitalised).
BRAND_SENTENCES = (
    "{signature} sets it apart.",
    "It is built around {signature}.",
    "Look for {signature} in every detail.",
    "Like everything from {brand}, it showcases {signature}.",
)

CLOSERS = {
    "budget": (
        "Great value for everyday use.",
        "An easy, affordable pick for first-time buyers.",
        "Budget-friendly and easy to replace.",
        "Affordable everyday quality at a low price.",
    ),
    "mid": (
        "Backed by a two-year warranty.",
        "A reliable choice for daily use.",
        "Quality you can count on, at a fair price.",
        "Designed to last through years of regular use.",
    ),
    "premium": (
        "Covered by a lifetime warranty.",
        "Finished by hand and inspected twice before shipping.",
        "Arrives in premium gift packaging.",
        "Professional-grade quality built to last a lifetime.",
    ),
}


@dataclass(frozen=True)
class Brand:
    """An invented brand: popularity weight, price premium, quality, signature."""

    name: str
    popularity: float
    premium: float
    quality: float
    signature: str


@dataclass(frozen=True)
class Category:
    """A product category with its share, price model and vocabulary."""

    name: str
    share: float
    median_price: float
    price_sigma: float
    brands: tuple[Brand, ...]
    nouns: tuple[str, ...]
    variant_pools: tuple[tuple[str, ...], ...]
    features: tuple[str, ...]
    uses: tuple[str, ...]
    adjectives: dict[str, tuple[str, ...]] | None = None


COLOURS = ("Black", "White", "Navy", "Olive", "Slate Grey", "Sand", "Burgundy", "Teal")

CATEGORIES = (
    Category(
        name="Electronics",
        share=0.18,
        median_price=180.0,
        price_sigma=0.7,
        brands=(
            Brand("Voltaro", 5, 1.0, 4.1, "Voltaro's adaptive power management"),
            Brand("Lumetra", 3, 1.3, 4.3, "Lumetra's true-color display tuning"),
            Brand("Bytewell", 6, 0.7, 3.8, "Bytewell's plug-and-play setup"),
            Brand("Arcflare", 2, 1.7, 4.5, "Arcflare's studio-tuned acoustics"),
            Brand("Sonaro", 4, 1.1, 4.2, "Sonaro's SpatialWave audio engine"),
            Brand("Quillon", 1, 0.85, 3.9, "Quillon's long-term firmware support"),
        ),
        nouns=(
            "Wireless Earbuds", "Over-Ear Headphones", "Bluetooth Speaker",
            "Smartwatch", "Action Camera", "Portable Charger",
            "Mechanical Keyboard", "Wireless Mouse", "Streaming Stick",
            "E-Reader", "Soundbar", "Webcam",
        ),
        variant_pools=(
            ("Model {num}", "Gen {digit}", "Series {num}"),
            ("Midnight Black", "Arctic White", "Graphite", "Ocean Blue", "Silver", "Rose Gold"),
        ),
        features=(
            "a sleek aluminum housing", "fast USB-C connectivity",
            "low-latency Bluetooth 5.3 pairing", "a companion app with regular updates",
            "an energy-efficient design", "intuitive one-touch controls",
            "a compact, travel-ready build",
        ),
        uses=(
            "home offices", "everyday tech use", "travel", "entertainment setups", "work and play",
        ),
    ),
    Category(
        name="Kitchen",
        share=0.15,
        median_price=35.0,
        price_sigma=0.6,
        brands=(
            Brand("Copperleaf", 3, 1.4, 4.4, "Copperleaf's tri-ply construction"),
            Brand("Hearthwell", 5, 1.0, 4.1, "Hearthwell's enameled cast iron"),
            Brand("Saltbox Kitchen", 4, 0.75, 3.9, "Saltbox Kitchen's easy-release coating"),
            Brand("Ferro & Pine", 2, 1.7, 4.6, "Ferro & Pine's hand-forged steel"),
            Brand("Brightpot", 4, 0.6, 3.7, "Brightpot's color-coded handles"),
        ),
        nouns=(
            "2-Quart Saucepan", "3-Quart Saucepan", "10-Inch Skillet", "12-Inch Skillet",
            "8-Inch Chef's Knife", "5-Quart Dutch Oven", "Bamboo Cutting Board",
            "8-Quart Stockpot", "Mixing Bowl Set", "Utensil Set", "Half-Sheet Baking Pan",
            "Electric Kettle",
        ),
        variant_pools=(
            (
                "Stainless Steel", "Matte Black", "Copper", "Graphite", "Cream", "Sage Green", "Enamel Red",
            ),
        ),
        features=(
            "durable, food-safe materials", "comfortable stay-cool handles",
            "dishwasher-safe construction", "a stain-resistant finish",
            "a balanced, sturdy feel", "heat-resistant materials",
        ),
        uses=("weeknight dinners", "slow braises", "meal prep", "holiday baking", "family cooking"),
    ),
    Category(
        name="Beauty",
        share=0.13,
        median_price=18.0,
        price_sigma=0.6,
        brands=(
            Brand("Dewbloom", 5, 0.9, 4.2, "Dewbloom's plant-based botanicals"),
            Brand("Velvara", 2, 1.6, 4.5, "Velvara's cold-pressed oil blend"),
            Brand("Glowcraft", 4, 1.0, 4.0, "Glowcraft's clinically tested actives"),
            Brand("Puremist", 6, 0.6, 3.9, "Puremist's gentle fragrance-free base"),
            Brand("Saffra Lane", 1, 1.3, 4.3, "Saffra Lane's small-batch formulas"),
            Brand("Lumisoft", 3, 0.8, 4.1, "Lumisoft's refillable packaging"),
        ),
        nouns=(
            "Face Serum", "Moisturizer", "Cleansing Balm", "Lip Tint", "Shampoo",
            "Hair Mask", "Body Lotion", "Eye Cream", "Mineral Sunscreen", "Clay Mask",
        ),
        variant_pools=(
            ("1 fl oz", "1.7 fl oz", "3.4 fl oz", "8 fl oz"),
            ("Unscented", "Lavender", "Citrus", "Rose", "Eucalyptus", "Vanilla"),
        ),
        features=(
            "hyaluronic acid for lasting hydration", "a lightweight, non-greasy texture",
            "antioxidant-rich vitamin C", "soothing aloe and chamomile",
            "a dermatologist-tested formula", "a clean, vegan formula",
            "nourishing shea butter",
        ),
        uses=(
            "morning routines", "sensitive skin", "nightly self-care", "dry winter months", "travel bags",
        ),
    ),
    Category(
        name="Shoes",
        share=0.11,
        median_price=70.0,
        price_sigma=0.45,
        brands=(
            Brand("Strideline", 5, 1.0, 4.2, "Strideline's rebound foam"),
            Brand("Trailmark", 3, 1.15, 4.3, "Trailmark's lugged all-terrain outsole"),
            Brand("Cobbleford", 2, 1.6, 4.5, "Cobbleford's hand-stitched welt"),
            Brand("Pacewell", 4, 0.8, 3.9, "Pacewell's breathable knit upper"),
            Brand("Fernstep", 1, 0.9, 4.0, "Fernstep's recycled-rubber sole"),
        ),
        nouns=(
            "Trail Running Shoe", "Road Running Shoe", "Leather Loafer", "Canvas Sneaker",
            "Hiking Boot", "Chelsea Boot", "Walking Shoe", "Slip-On Sneaker", "Sport Sandal",
        ),
        variant_pools=(
            COLOURS,
            ("Size 6", "Size 7", "Size 8", "Size 9", "Size 10", "Size 11", "Size 12"),
        ),
        features=(
            "a cushioned midsole", "a breathable mesh upper", "a grippy rubber outsole",
            "a padded collar", "a supportive heel counter", "a moisture-wicking lining",
            "a removable contoured insole", "a reinforced toe cap",
        ),
        uses=("daily commutes", "all-day wear", "casual outings", "travel days", "busy workdays"),
    ),
    Category(
        name="Sports",
        share=0.10,
        median_price=40.0,
        price_sigma=0.65,
        brands=(
            Brand("Peakform", 5, 1.0, 4.1, "Peakform's sweat-proof grip"),
            Brand("Ridgeback Athletics", 3, 1.2, 4.3, "Ridgeback Athletics' pro-tested designs"),
            Brand("Kinetiq", 2, 1.5, 4.5, "Kinetiq's aerospace-grade alloys"),
            Brand("Fitloop", 6, 0.7, 3.9, "Fitloop's beginner-friendly designs"),
            Brand("Summitry", 1, 1.1, 4.2, "Summitry's trail-tested durability"),
        ),
        nouns=(
            "Yoga Mat", "Resistance Band Set", "Adjustable Dumbbell", "Jump Rope",
            "Tennis Racket", "Soccer Ball", "Cycling Helmet", "Foam Roller",
            "Insulated Water Bottle", "Gym Duffel Bag",
        ),
        variant_pools=(COLOURS, ("Compact", "Standard", "Large")),
        features=(
            "a non-slip textured grip", "durable, sweat-resistant materials",
            "a lightweight athletic build", "impact-tested construction",
            "quick-dry performance materials", "a training-ready ergonomic design",
        ),
        uses=(
            "home workouts", "training sessions", "weekend matches", "gym sessions", "active weekends",
        ),
    ),
    Category(
        name="Toys",
        share=0.09,
        median_price=25.0,
        price_sigma=0.55,
        brands=(
            Brand("Pebblepop", 5, 0.8, 4.0, "Pebblepop's bright, chunky designs"),
            Brand("Tinker Hollow", 3, 1.3, 4.4, "Tinker Hollow's sustainably harvested beechwood"),
            Brand("Zoomwhistle", 4, 1.0, 3.9, "Zoomwhistle's rechargeable motors"),
            Brand("Marblemoss", 2, 1.5, 4.5, "Marblemoss's heirloom-quality craftsmanship"),
            Brand("Brightbarn", 1, 0.7, 3.8, "Brightbarn's mix-and-match pieces"),
        ),
        nouns=(
            "Building Block Set", "Plush Bear", "Wooden Train Set", "Jigsaw Puzzle",
            "Remote Control Car", "Art Kit", "Dollhouse", "Science Kit", "Board Game",
            "Stacking Rings",
        ),
        variant_pools=(
            (
                "Dinosaur Edition", "Space Edition", "Ocean Edition", "Farm Edition", "Castle Edition",
            ),
            ("Ages 3+", "Ages 5+", "Ages 8+", "Ages 10+"),
        ),
        features=(
            "non-toxic water-based paints", "rounded child-safe edges",
            "easy-to-follow picture guides", "sturdy, play-tested construction",
            "bright, fade-resistant colors", "a design sized for small hands",
        ),
        uses=(
            "rainy afternoons", "family game nights", "creative play", "early learning", "birthday gifts",
        ),
    ),
    Category(
        name="Home Decor",
        share=0.08,
        median_price=45.0,
        price_sigma=0.7,
        brands=(
            Brand("Willowmere", 4, 1.0, 4.2, "Willowmere's hand-loomed textiles"),
            Brand("Oakhollow", 3, 1.3, 4.3, "Oakhollow's reclaimed-wood finishes"),
            Brand("Lumen & Loft", 2, 1.6, 4.5, "Lumen & Loft's mouth-blown glass"),
            Brand("Nestwell", 5, 0.7, 3.9, "Nestwell's easy-care fabrics"),
            Brand("Driftstone", 1, 0.9, 4.0, "Driftstone's coastal-inspired palette"),
        ),
        nouns=(
            "Throw Pillow", "Table Lamp", "Round Wall Mirror", "Area Rug", "Scented Candle",
            "Ceramic Vase", "Picture Frame Set", "Wall Clock", "Knit Throw Blanket",
            "Floating Shelf",
        ),
        variant_pools=(
            ("Ivory", "Charcoal", "Terracotta", "Sage", "Navy", "Mustard", "Blush"),
            ("Small", "Medium", "Large"),
        ),
        features=(
            "a textured, handcrafted finish", "solid wood accents", "brushed brass details",
            "a modern, minimalist silhouette", "a warm, neutral palette",
            "a timeless, versatile style",
        ),
        uses=("living rooms", "bedrooms", "entryways", "reading nooks", "housewarming gifts"),
    ),
    Category(
        name="Books",
        share=0.07,
        median_price=15.0,
        price_sigma=0.45,
        brands=(
            Brand("Lanternhouse Press", 5, 1.0, 4.2, "Lanternhouse Press's award-winning editors"),
            Brand("Inkwell & Oak", 3, 1.3, 4.4, "Inkwell & Oak's letterpress-style covers"),
            Brand("Bramblewood Books", 4, 0.8, 4.1, "Bramblewood Books' cozy storytelling"),
            Brand(
                "Northlight Editions", 2, 1.5, 4.5, "Northlight Editions' archival-quality paper",
            ),
        ),
        nouns=(
            "Mystery Novel", "Cookbook", "Travel Guide", "Poetry Collection",
            "Birding Field Guide", "Sci-Fi Novel", "Picture Book",
            "History of Sailing", "Gardening Handbook", "Memoir",
        ),
        variant_pools=(
            ("Paperback", "Hardcover", "Large Print", "Spiral-Bound"),
            ("First Edition", "2nd Edition", "3rd Edition", "Illustrated", "Annotated"),
        ),
        features=(
            "vivid full-color illustrations", "a detailed index", "thoughtful author notes",
            "a sturdy sewn binding", "a ribbon bookmark", "clear, readable type",
        ),
        uses=("quiet evenings", "book clubs", "long flights", "gifting", "classroom reading"),
        adjectives={
            "budget": ("Pocket", "Everyday", "Value"),
            "mid": ("Classic", "Popular", "Revised"),
            "premium": ("Collector's", "Deluxe", "Signature"),
        },
    ),
    Category(
        name="Garden",
        share=0.06,
        median_price=30.0,
        price_sigma=0.7,
        brands=(
            Brand("Greenhaven", 4, 1.0, 4.1, "Greenhaven's weatherproof finish"),
            Brand("Thornbury", 2, 1.5, 4.5, "Thornbury's forged-steel heads"),
            Brand("Sproutly", 5, 0.7, 3.9, "Sproutly's lightweight recycled plastics"),
            Brand("Mossgate", 3, 1.2, 4.3, "Mossgate's hand-finished ash handles"),
            Brand("Rainpail", 1, 0.85, 4.0, "Rainpail's leak-proof fittings"),
        ),
        nouns=(
            "Pruning Shears", "Expandable Garden Hose", "Raised Bed Kit", "Watering Can",
            "Hand Trowel", "Seed Starter Kit", "Hose Nozzle", "Kneeling Pad", "Planter",
            "Compost Bin",
        ),
        variant_pools=(
            ("Forest Green", "Terracotta", "Charcoal", "Sage", "Sky Blue"),
            ("Small", "Medium", "Large"),
        ),
        features=(
            "rust-resistant hardware", "UV-stabilized materials", "a weatherproof build",
            "ergonomic cushioned grips", "lightweight, outdoor-tough materials",
            "frost-proof construction",
        ),
        uses=(
            "vegetable beds", "balcony gardens", "spring planting", "rose pruning", "patio containers",
        ),
    ),
    Category(
        name="Pet Supplies",
        share=0.03,
        median_price=22.0,
        price_sigma=0.6,
        brands=(
            Brand("Wagsworth", 3, 1.2, 4.3, "Wagsworth's chew-resistant stitching"),
            Brand("Purrfield", 2, 1.0, 4.2, "Purrfield's vet-approved designs"),
            Brand("Barkley Bay", 4, 0.8, 4.0, "Barkley Bay's machine-washable fabrics"),
            Brand("Tailtide", 1, 1.5, 4.5, "Tailtide's orthopedic memory foam"),
        ),
        nouns=(
            "Dog Bed", "Cat Scratching Post", "Dog Leash", "Pet Water Fountain",
            "Chew Toy", "Litter Mat", "Dog Harness", "Grooming Brush",
        ),
        variant_pools=(("Small", "Medium", "Large", "XL"), COLOURS),
        features=(
            "a non-skid base", "pet-safe, non-toxic materials", "reflective safety details",
            "durable, chew-tested construction", "a cozy, comfortable fit",
            "an easy-to-clean design",
        ),
        uses=("senior dogs", "playful kittens", "daily walks", "long naps", "multi-pet homes"),
    ),
)


def pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    """Return one element of ``options`` chosen uniformly at random."""
    return options[int(rng.integers(len(options)))]


def sample_skus(rng: np.random.Generator, n: int) -> list[str]:
    """Draw ``n`` distinct 8-digit SKUs, returned in ascending order."""
    numbers = np.sort(rng.choice(90_000_000, size=n, replace=False) + 10_000_000)
    return [f"SKU-{number}" for number in numbers]


def sample_structure(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Draw category and brand for ``n`` products (as positional indexes)."""
    shares = np.array([c.share for c in CATEGORIES])
    category_idx = rng.choice(len(CATEGORIES), size=n, p=shares / shares.sum())
    brand_idx = np.empty(n, dtype=int)
    for ci, category in enumerate(CATEGORIES):
        rows = np.flatnonzero(category_idx == ci)
        weights = np.array([b.popularity for b in category.brands])
        brand_idx[rows] = rng.choice(len(weights), size=rows.size, p=weights / weights.sum())
    return pd.DataFrame({"category_idx": category_idx, "brand_idx": brand_idx})


def brand_attribute(frame: pd.DataFrame, attribute: str) -> np.ndarray:
    """Look up a numeric ``Brand`` attribute for every row of ``frame``."""
    return np.array(
        [
            getattr(CATEGORIES[ci].brands[bi], attribute)
            for ci, bi in zip(frame["category_idx"], frame["brand_idx"])
        ],
        dtype=float,
    )


def relative_popularity(frame: pd.DataFrame) -> np.ndarray:
    """Brand popularity divided by the mean popularity of its category's brands."""
    category_mean = np.array(
        [np.mean([b.popularity for b in c.brands]) for c in CATEGORIES]
    )
    return brand_attribute(frame, "popularity") / category_mean[frame["category_idx"]]


def sample_prices(rng: np.random.Generator, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Log-normal prices by category and brand, plus list prices with discounts."""
    medians = np.array([c.median_price for c in CATEGORIES])[frame["category_idx"]]
    sigmas = np.array([c.price_sigma for c in CATEGORIES])[frame["category_idx"]]
    raw = medians * brand_attribute(frame, "premium") * rng.lognormal(0.0, sigmas)
    price = np.maximum(np.round(raw, 2), 0.99)

    n = len(frame)
    discount = np.where(rng.random(n) < 0.6, 0.0, rng.uniform(0.05, 0.50, size=n))
    list_price = np.maximum(np.round(price * (1.0 + discount), 2), price)
    return price, list_price


def sample_units_sold(rng: np.random.Generator, frame: pd.DataFrame) -> np.ndarray:
    """Heavy-tailed (Poisson-lognormal) sales, higher for cheap items and popular brands."""
    medians = np.array([c.median_price for c in CATEGORIES])[frame["category_idx"]]
    price_effect = (frame["price"].to_numpy() / medians) ** -0.7
    mean = 12.0 * relative_popularity(frame) * price_effect * rng.lognormal(0.0, 1.3, len(frame))
    return rng.poisson(mean)


def sample_ratings(rng: np.random.Generator, frame: pd.DataFrame) -> np.ndarray:
    """Ratings skewed towards 5 around brand quality; rarely-sold items often unrated."""
    quality = brand_attribute(frame, "quality")
    # 5 minus a gamma draw whose mean is (5 - quality): long tail towards 1 star.
    rating = np.clip(np.round(5.0 - rng.gamma(2.0, (5.0 - quality) / 2.0), 1), 1.0, 5.0)
    units = frame["units_sold"].to_numpy()
    missing_prob = 0.02 + 0.5 * np.exp(-units / 2.0)
    return np.where(rng.random(len(frame)) < missing_prob, np.nan, rating)


def price_tiers(frame: pd.DataFrame) -> pd.Series:
    """Tercile of each row's price within its category: budget, mid or premium."""
    pct = frame.groupby("category_idx")["price"].rank(method="first", pct=True)
    return pd.Series(np.array(TIERS)[np.ceil(pct * 3).astype(int) - 1], index=frame.index)


def make_name(
    rng: np.random.Generator, category: Category, brand: Brand, tier: str
) -> tuple[str, str]:
    """Build a product name; return it together with the product noun it uses."""
    adjectives = (category.adjectives or TIER_ADJECTIVES)[tier]
    noun = pick(rng, category.nouns)
    variants = [
        pick(rng, pool).format(num=int(rng.integers(100, 1000)), digit=int(rng.integers(2, 6)))
        for pool in category.variant_pools
    ]
    return f"{brand.name} {pick(rng, adjectives)} {noun}, {', '.join(variants)}", noun


def make_description(
    rng: np.random.Generator, category: Category, brand: Brand, tier: str, noun: str
) -> str:
    """Write 1-3 sentences whose wording depends on category, brand and price tier."""
    feature, feature2 = (
        category.features[i] for i in rng.choice(len(category.features), 2, replace=False)
    )
    sentences = [
        pick(rng, OPENERS[tier]).format(
            noun=noun.lower(), feature=feature, feature2=feature2, use=pick(rng, category.uses)
        )
    ]
    if rng.random() < 0.8:
        sentences.append(
            pick(rng, BRAND_SENTENCES).format(signature=brand.signature, brand=brand.name)
        )
    if rng.random() < 0.6:
        sentences.append(pick(rng, CLOSERS[tier]))
    return " ".join(sentences)


def build_catalog(seed: int = SEED, n: int = N_PRODUCTS) -> pd.DataFrame:
    """Generate the full catalog as a DataFrame with the published column order."""
    rng = np.random.default_rng(seed)
    frame = sample_structure(rng, n)
    frame["sku"] = sample_skus(rng, n)
    frame["price"], frame["list_price"] = sample_prices(rng, frame)
    frame["units_sold"] = sample_units_sold(rng, frame)
    frame["rating"] = sample_ratings(rng, frame)
    frame["tier"] = price_tiers(frame)

    names, descriptions = [], []
    for ci, bi, tier in zip(frame["category_idx"], frame["brand_idx"], frame["tier"]):
        category = CATEGORIES[ci]
        brand = category.brands[bi]
        name, noun = make_name(rng, category, brand, tier)
        names.append(name)
        descriptions.append(make_description(rng, category, brand, tier, noun))

    frame["category"] = [CATEGORIES[ci].name for ci in frame["category_idx"]]
    frame["brand"] = [
        CATEGORIES[ci].brands[bi].name for ci, bi in zip(frame["category_idx"], frame["brand_idx"])
    ]
    frame["name"] = names
    frame["description"] = descriptions
    return frame[COLUMNS]


def write_csv(catalog: pd.DataFrame, path: str | Path) -> None:
    """Write with fixed number formatting and line endings for byte-stable output."""
    out = catalog.copy()
    out["price"] = out["price"].map("{:.2f}".format)
    out["list_price"] = out["list_price"].map("{:.2f}".format)
    out["rating"] = out["rating"].map(lambda r: "" if np.isnan(r) else f"{r:.1f}")
    out.to_csv(path, index=False, lineterminator="\n", encoding="ascii")
