"""Write ``products.csv`` beside this script: the seeded demo catalog of ``shopgen.demo`` (byte-identical each run)."""

from pathlib import Path

from shopgen.demo import build_catalog, write_csv

if __name__ == "__main__":
    path = Path(__file__).resolve().parent / "products.csv"
    catalog = build_catalog()
    write_csv(catalog, path)
    print(f"wrote {len(catalog)} products to {path}")
