"""Writing text with a fitted GPT: the batched sampler (sampler.py), the cached decoders it steps
(decoder.py), and the worker processes that share its rows (shards.py)."""
