"""The tabular model on disk, loadable without running foreign code.

A bundle's files can be rewritten by anyone who can write its folder, manifest hashes included, so
the hashes prove integrity against accidents, not against an attacker. Unpickling is where code would
run: a pickle names callables (`os.system`) and calls them. So:

- tensors never enter the pickle: they go to a safetensors file, and the pickle refers to them by key
  (torch's own pickling of a tensor calls `torch.load(..., weights_only=False)` on nested bytes, a
  second, unrestricted unpickler);
- a bound method kept as an attribute (copulas swaps in `_constant_sample` for a constant column) is
  stored as (object, method name) instead of pickle's `getattr(object, name)`, and rebuilt only when
  the method is listed: `getattr` itself would hand a payload any attribute of anything;
- loading admits only the exact names in `allowed.txt` (module and name, one per line: the classes a
  shopgen bundle holds and the helpers numpy, pandas and copyreg rebuild them with), the approach of
  skops' trusted types; anything else is refused by name before it is imported;
- saving checks its own output against the same list, so a model that would need a new name fails when
  it is fitted, never when a user loads it.

Callables that reach other callables (`getattr`, `eval`, `functools.partial`, `torch.load`, module
loaders) are not in the list, so a payload cannot build one from allowed parts.
"""

from __future__ import annotations

import io
import pickle
import types
from importlib import resources
from pathlib import Path
from typing import Any

from shopgen.errors import BundleError

PROTOCOL = 4


def _listed() -> list[list[str]]:
    text = resources.files("shopgen").joinpath("allowed.txt").read_text(encoding="utf-8")
    return [line.split() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def allowed() -> frozenset[tuple[str, str]]:
    """(module, name) of every global a bundle's pickle may name."""
    return frozenset((p[0], p[1]) for p in _listed() if len(p) == 2)


def allowed_methods() -> frozenset[tuple[str, str]]:
    """(module, qualified name) of every method a pickled object may hold bound as an attribute."""
    return frozenset((p[1], p[2]) for p in _listed() if len(p) == 3 and p[0] == "method")


class _TensorPickler(pickle.Pickler):
    def __init__(self, fh: io.BufferedIOBase, tensors: dict) -> None:
        super().__init__(fh, protocol=PROTOCOL)
        self.tensors = tensors
        self.keys: dict[int, str] = {}
        self.alive: list[Any] = []  # keeps each tensor alive so its id() is not reused mid-dump

    def persistent_id(self, obj: Any) -> tuple | None:
        import torch

        if isinstance(obj, types.MethodType):
            return ("method", obj.__self__, obj.__func__.__module__, obj.__func__.__qualname__)
        if not isinstance(obj, torch.Tensor):
            return None
        key = self.keys.get(id(obj))
        if key is None:
            key = self.keys[id(obj)] = f"t{len(self.keys)}"
            self.tensors[key] = obj.detach().cpu().contiguous().clone()
            self.alive.append(obj)
        return ("parameter" if isinstance(obj, torch.nn.Parameter) else "tensor", key, bool(obj.requires_grad))


class _SafeUnpickler(pickle.Unpickler):
    def __init__(self, fh: io.BufferedIOBase, tensors: dict, names: frozenset, source: str,
                 methods: frozenset = frozenset()) -> None:
        super().__init__(fh)
        self.tensors, self.names, self.methods, self.source = tensors, names, methods, source
        self.made: dict[str, Any] = {}
        self.seen: set[tuple[str, str]] = set()
        self.seen_methods: set[tuple[str, str]] = set()

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.names:
            raise BundleError(
                f"{self.source} names {module}.{name}, which a shopgen bundle never holds; refusing to load it "
                "(a modified or foreign bundle: refit it, or get it from someone you trust)"
            )
        self.seen.add((module, name))
        return super().find_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        import torch

        if isinstance(pid, tuple) and len(pid) == 4 and pid[0] == "method":
            return self.method(*pid[1:])
        if not (isinstance(pid, tuple) and len(pid) == 3 and pid[0] in ("tensor", "parameter") and pid[1] in self.tensors):
            raise BundleError(f"{self.source} refers to a tensor {str(pid)[:60]!r} its weights file lacks; refit the bundle")
        kind, key, grad = pid
        if key not in self.made:
            value = self.tensors[key]
            self.made[key] = torch.nn.Parameter(value, requires_grad=bool(grad)) if kind == "parameter" else value.requires_grad_(bool(grad) and value.is_floating_point())
        return self.made[key]


    def method(self, owner: Any, module: Any, qualname: Any) -> Any:
        """A listed method bound to `owner`, found on owner's class: never an arbitrary attribute."""
        key = (str(module), str(qualname))
        func = getattr(type(owner), key[1].rsplit(".", 1)[-1], None)
        if (key not in self.methods and not self.recording) or not isinstance(func, types.FunctionType) \
                or (func.__module__, func.__qualname__) != key:
            raise BundleError(f"{self.source} binds the method {key[0]}.{key[1]}, which a shopgen bundle never holds; "
                              "refusing to load it (a modified or foreign bundle: refit it)")
        self.seen_methods.add(key)
        return types.MethodType(func, owner)

    recording = False


def dump(obj: Any, pickle_path: Path, tensors_path: Path) -> None:
    """Write `obj` as a pickle without tensors plus a safetensors file of its tensors, then prove it loads."""
    from safetensors.torch import save_file

    tensors: dict = {}
    buffer = io.BytesIO()
    _TensorPickler(buffer, tensors).dump(obj)
    data = buffer.getvalue()
    try:
        _SafeUnpickler(io.BytesIO(data), tensors, allowed(), "the model being saved", allowed_methods()).load()
    except BundleError as exc:
        raise BundleError(f"{exc}. This model cannot be saved safely: please report it to shopgen with your "
                          "SDV version (scripts/allowed_names.py lists what a bundle may hold)") from None
    pickle_path.write_bytes(data)
    save_file(tensors, str(tensors_path))


def load(pickle_path: Path, tensors_path: Path) -> Any:
    """Load what `dump` wrote, admitting only the allowed names; anything else is a BundleError."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(tensors_path)) if tensors_path.exists() else {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise BundleError(f"{tensors_path.name} is not a readable safetensors file ({exc}); refit the bundle") from None
    source = f"{pickle_path.parent.name}/{pickle_path.name}"
    try:
        with pickle_path.open("rb") as fh:
            return _SafeUnpickler(fh, tensors, allowed(), source, allowed_methods()).load()
    except BundleError:
        raise
    except Exception as exc:  # a truncated or garbled pickle, or one whose allowed parts do not fit together
        raise BundleError(f"{source} cannot be read ({type(exc).__name__}: {str(exc)[:120]}); refit the bundle") from None


def names_used(obj: Any) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """Every (module, name) global and bound method a pickle of `obj` needs: what `allowed.txt` is made from."""
    tensors: dict = {}
    buffer = io.BytesIO()
    _TensorPickler(buffer, tensors).dump(obj)
    every = frozenset()

    class Recorder(_SafeUnpickler):
        recording = True

        def find_class(self, module: str, name: str) -> Any:
            self.seen.add((module, name))
            return pickle.Unpickler.find_class(self, module, name)

    recorder = Recorder(io.BytesIO(buffer.getvalue()), tensors, every, "recording")
    recorder.load()
    return recorder.seen, recorder.seen_methods
