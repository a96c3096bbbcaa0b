"""`Parameter`, `Module` and the containers `Sequential` and `ModuleList`.

The design follows PyTorch so that official YOLOX names carry over: attribute names build dotted
state-dict keys (`stem.conv.weight`), and a module is called as `layer(x)`. Unlike PyTorch there is no
autograd: every module implements `forward(x)`, which caches what it needs, and `backward(dout)`, which
returns the input gradient and *accumulates* (+=) the gradients of its parameters.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

import numpy as np


class Parameter:
    """A learnable array `.data` with its gradient buffer `.grad` (same shape and dtype)."""

    __slots__ = ("_data", "grad")

    def __init__(self, data: np.ndarray):
        data = np.asarray(data)
        if not np.issubdtype(data.dtype, np.floating):
            raise ValueError(f"Parameter needs a floating-point array, got dtype {data.dtype}")
        self._data = np.ascontiguousarray(data)
        self.grad = np.zeros_like(self._data)

    @property
    def data(self) -> np.ndarray:
        return self._data

    @data.setter
    def data(self, value: np.ndarray) -> None:
        value = np.asarray(value)
        if value.shape != self._data.shape:
            raise ValueError(f"Parameter.data must keep shape {self._data.shape}, got {value.shape}")
        self._data = np.ascontiguousarray(value)
        if self.grad.dtype != self._data.dtype:
            self.grad = np.zeros_like(self._data)

    @property
    def shape(self) -> tuple[int, ...]:
        return self._data.shape

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def size(self) -> int:
        return self._data.size

    def zero_grad(self) -> None:
        self.grad[...] = 0

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.dtype})"


class Module:
    """Base class of every layer and model.

    Sub-classes assign `Parameter`s, child `Module`s and buffers (via `register_buffer`) as attributes;
    registration order is the state-dict order, as in PyTorch.
    """

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # ----------------------------------------------------------------- registration
    def __setattr__(self, name: str, value) -> None:
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() first")
        for store in (self._parameters, self._buffers, self._modules):
            store.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        elif name in self.__dict__.get("_buffer_names", ()):
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)
            return
        self.__dict__.pop(name, None)

    def __getattr__(self, name: str):
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if store in d and name in d[store]:
                return d[store][name]
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        for store in (self._parameters, self._buffers, self._modules):
            if name in store:
                del store[name]
                return
        object.__delattr__(self, name)

    def register_buffer(self, name: str, value: np.ndarray) -> None:
        """A state array that is saved and cast with the module but is not learned (BN statistics)."""
        names = self.__dict__.setdefault("_buffer_names", set())
        names.add(name)
        self._buffers[name] = np.ascontiguousarray(value)

    # ----------------------------------------------------------------- traversal
    def children(self) -> Iterator[Module]:
        yield from self._modules.values()

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        for mod_name, mod in self.named_modules(prefix):
            for name, p in mod._parameters.items():
                yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self) -> Iterator[Parameter]:
        for _, p in self.named_parameters():
            yield p

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        for mod_name, mod in self.named_modules(prefix):
            for name, b in mod._buffers.items():
                yield (f"{mod_name}.{name}" if mod_name else name), b

    def num_parameters(self) -> int:
        return int(sum(p.size for p in self.parameters()))

    # ----------------------------------------------------------------- modes, grads, dtype
    def train(self, mode: bool = True) -> Module:
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.zero_grad()

    def astype(self, dtype) -> Module:
        """Cast every parameter, gradient and floating buffer in place (children included); returns self."""
        dtype = np.dtype(dtype)
        if not np.issubdtype(dtype, np.floating):
            raise ValueError(f"astype needs a floating dtype, got {dtype}")
        for m in self.modules():
            for p in m._parameters.values():
                p._data = p._data.astype(dtype)
                p.grad = np.zeros_like(p._data)
            for name, b in m._buffers.items():
                if np.issubdtype(b.dtype, np.floating):
                    m._buffers[name] = b.astype(dtype)
        return self

    @property
    def dtype(self) -> np.dtype:
        for p in self.parameters():
            return p.dtype
        return np.dtype(np.float32)

    # ----------------------------------------------------------------- state dict
    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """Parameters then buffers of each module, depth first, as PyTorch orders them (copies)."""
        out: OrderedDict[str, np.ndarray] = OrderedDict()
        for mod_name, mod in self.named_modules():
            pre = f"{mod_name}." if mod_name else ""
            for name, p in mod._parameters.items():
                out[pre + name] = p.data.copy()
            for name, b in mod._buffers.items():
                out[pre + name] = np.array(b, copy=True)
        return out

    def load_state_dict(self, state: dict, strict: bool = True) -> dict:
        """Copy values into the existing arrays, keeping their dtype.

        Keys ending in `num_batches_tracked` (PyTorch BN counters) are accepted and ignored. With
        `strict=True`, missing, unexpected and mis-shaped keys raise one `ValueError` listing all of them;
        otherwise the matching keys are loaded and the lists are returned.
        """
        if not hasattr(state, "items"):
            raise ValueError(f"load_state_dict needs a mapping of name -> array, got {type(state).__name__}")
        targets: dict[str, tuple[Module, str, str]] = {}
        for mod_name, mod in self.named_modules():
            pre = f"{mod_name}." if mod_name else ""
            for name in mod._parameters:
                targets[pre + name] = (mod, "param", name)
            for name in mod._buffers:
                targets[pre + name] = (mod, "buffer", name)
        given = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
        missing = [k for k in targets if k not in given]
        unexpected = [k for k in given if k not in targets]
        mismatched = []
        for k, v in given.items():
            if k in targets:
                cur = self._lookup(targets[k])
                if tuple(np.shape(v)) != cur.shape:
                    mismatched.append(f"{k}: expected {cur.shape}, got {tuple(np.shape(v))}")
                elif not np.all(np.isfinite(np.asarray(v, dtype=np.float64))):
                    mismatched.append(f"{k}: contains non-finite values")
        if strict and (missing or unexpected or mismatched):
            parts = []
            if missing:
                parts.append(f"missing keys ({len(missing)}): {', '.join(missing)}")
            if unexpected:
                parts.append(f"unexpected keys ({len(unexpected)}): {', '.join(unexpected)}")
            if mismatched:
                parts.append(f"mis-shaped or invalid keys ({len(mismatched)}): {'; '.join(mismatched)}")
            raise ValueError(f"load_state_dict into {type(self).__name__} failed: " + " | ".join(parts))
        bad = {m.split(":")[0] for m in mismatched}
        for k, v in given.items():
            if k in targets and k not in bad:
                cur = self._lookup(targets[k])
                cur[...] = np.asarray(v, dtype=cur.dtype)
        return {"missing": missing, "unexpected": unexpected, "mismatched": mismatched}

    @staticmethod
    def _lookup(target: tuple[Module, str, str]) -> np.ndarray:
        mod, kind, name = target
        return mod._parameters[name].data if kind == "param" else mod._buffers[name]

    # ----------------------------------------------------------------- calling
    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def forward(self, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__}.forward is not implemented")

    def backward(self, dout):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__}.backward is not implemented")

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, child in self._modules.items():
            sub = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {sub}")
        return lines[0] + ")" if len(lines) == 1 else "\n".join(lines) + "\n)"


class Sequential(Module):
    """Children named `0`, `1`, ... run in order; backward runs them in reverse."""

    def __init__(self, *modules: Module):
        super().__init__()
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise ValueError(f"Sequential item {i} is a {type(m).__name__}, not a Module")
            setattr(self, str(i), m)

    def __len__(self) -> int:
        return len(self._modules)

    def __getitem__(self, i: int) -> Module:
        return list(self._modules.values())[i]

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def append(self, m: Module) -> Sequential:
        setattr(self, str(len(self)), m)
        return self

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def backward(self, dout):
        for m in reversed(self._modules.values()):
            dout = m.backward(dout)
        return dout


class ModuleList(Module):
    """A list of children named `0`, `1`, ...; it has no forward of its own."""

    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, m: Module) -> ModuleList:
        if not isinstance(m, Module):
            raise ValueError(f"ModuleList items must be Modules, got {type(m).__name__}")
        setattr(self, str(len(self)), m)
        return self

    def __len__(self) -> int:
        return len(self._modules)

    def __getitem__(self, i: int) -> Module:
        return list(self._modules.values())[i]

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())
