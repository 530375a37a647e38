"""The text model: a GPT that writes a row's text columns conditioned on its other columns.

The number types it may run in are named here, apart from the torch code that uses them, so options can be
checked before torch is imported (precision.py decides what "auto" means on a machine).
"""

TRAINING_PRECISIONS = ("auto", "fp32", "bf16")
SAMPLING_PRECISIONS = (*TRAINING_PRECISIONS, "int8")  # the sampler's weight matmuls: int8 weights, activations per call
