"""The Open Inference Protocol (v2): tensors ⇄ family rows and outputs, shared by REST and gRPC.

Both adapters (``api/routes/v2.py``, ``grpc/server.py``) decode their wire format into
:class:`InputTensor` values, call the data plane (``api/dataplane.py``), and encode the
:class:`OutputTensor` values it returns; nothing here knows HTTP or protobuf.

**Inputs.** A model version's :class:`Signature` comes from its family's ``describe()``
(``features``: name → ``numeric``/``categorical``/``datetime``, in training order) or, for
families without one, from the fields of its ``Input`` schema. A request sends either

* one tensor per feature, named like it, of shape ``[N, 1]`` or ``[N]`` — numeric features take
  any integer or floating datatype (advertised as ``FP64``), categorical ones ``BYTES`` (also
  ``BOOL`` and integers, passed on as they are), datetime ones ``BYTES`` (ISO 8601); or
* one 2-D tensor of any other name (e.g. ``input-0``) of shape ``[N, F]`` holding every feature
  in order, in a datatype every feature takes (so: numeric models, with a numeric tensor).

A NaN number is a missing value. Anything that does not fit raises ``InvalidInput`` naming the
input, what was expected and what came.

**Outputs.** Each key of the family's output items becomes a tensor: scalars ``[N]`` (``BOOL``,
``INT64``, ``FP64`` or ``BYTES`` by their values), mappings of numbers ``[N, C]`` ``FP64`` with
their keys, JSON-encoded, in the tensor's ``classes`` parameter — for the tabular family
``prediction`` and, for classifiers, ``probabilities``.

**Raw bytes** (gRPC ``raw_*_contents``, Triton's binary extension over HTTP): the flattened
row-major little-endian elements; ``BYTES`` elements each prefixed by their 4-byte little-endian
length.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel

from learnloop.core.errors import InvalidInput, Issue

SERVER_NAME = "learnloop"
EXTENSIONS = ("binary_tensor_data",)

NUMPY_TYPES: dict[str, str] = {
    "BOOL": "?",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}
DATATYPES = frozenset({*NUMPY_TYPES, "BYTES"})
INTEGERS = frozenset(t for t in NUMPY_TYPES if "INT" in t)
NUMBERS = INTEGERS | {"FP16", "FP32", "FP64"}
ACCEPTS: dict[str, frozenset[str]] = {
    "numeric": NUMBERS,
    "categorical": INTEGERS | {"BYTES", "BOOL"},
    "datetime": frozenset({"BYTES"}),
    "any": DATATYPES,  # inputs of a family whose signature is unknown: the family validates
}
ADVERTISED = {"numeric": "FP64", "categorical": "BYTES", "datetime": "BYTES", "any": "BYTES"}
TAKES = {
    "numeric": "a number datatype (FP64, FP32, INT64, …)",
    "categorical": "BYTES (or BOOL, or an integer datatype)",
    "datetime": "BYTES (ISO 8601 text)",
    "any": "any datatype",
}
Scalar = bool | int | float | str | None
Parameter = bool | int | float | str


@dataclass(frozen=True)
class TensorSpec:
    """One tensor of a model's metadata; ``-1`` is a variable dimension."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    parameters: Mapping[str, Parameter] = field(default_factory=dict)


@dataclass(frozen=True)
class Signature:
    """What a model version takes and gives, as tensors. ``kinds``: input name → feature kind."""

    model: str
    version: str
    platform: str
    kinds: Mapping[str, str]
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


@dataclass(frozen=True)
class InputTensor:
    """A decoded request tensor: ``data`` is flat, row-major, ``prod(shape)`` Python scalars."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: Sequence[Scalar]


@dataclass(frozen=True)
class OutputTensor:
    """A response tensor: ``data`` is flat, row-major, ``prod(shape)`` Python scalars."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: Sequence[Scalar]
    parameters: Mapping[str, Parameter] = field(default_factory=dict)


@dataclass(frozen=True)
class InferRequestData:
    """A transport-neutral infer request. ``outputs``: the requested names (empty: all)."""

    inputs: Sequence[InputTensor]
    id: str = ""
    outputs: Sequence[str] = ()
    subject_id: str | None = None
    alias: str | None = None


@dataclass(frozen=True)
class InferResult:
    """The answer: outputs plus learnloop's ``prediction_ids``/``served_by``/``arm``
    (JSON-encoded strings in ``parameters``, as the protocol's parameters are scalars)."""

    model: str
    version: str
    id: str
    outputs: list[OutputTensor]
    parameters: Mapping[str, Parameter]
    prediction_ids: list[str]


# -- decoding -------------------------------------------------------------------------------------


def tensor_from_raw(name: str, datatype: str, shape: Sequence[int], raw: bytes) -> InputTensor:
    """Decode raw bytes (see the module docstring) into an :class:`InputTensor`."""
    shape, count = _checked_shape(name, datatype, shape)
    if datatype == "BYTES":
        return InputTensor(name, datatype, shape, _split_bytes(name, raw, count))
    itemsize = np.dtype(NUMPY_TYPES[datatype]).itemsize
    if len(raw) != count * itemsize:
        raise _bad(
            name,
            f"shape {list(shape)} of {datatype} needs {count * itemsize} bytes "
            f"({count} × {itemsize}), got {len(raw)}",
        )
    values = np.frombuffer(raw, dtype=NUMPY_TYPES[datatype]).tolist()
    return InputTensor(name, datatype, shape, values)


def tensor_from_values(
    name: str, datatype: str, shape: Sequence[int], values: Sequence[Any]
) -> InputTensor:
    """Check JSON ``data`` (flat or nested) or typed gRPC contents against datatype and shape."""
    shape, count = _checked_shape(name, datatype, shape)
    flat = _flatten(values)
    if len(flat) != count:
        raise _bad(name, f"shape {list(shape)} needs {count} values, got {len(flat)}")
    out: list[Scalar] = []
    for i, value in enumerate(flat):
        ok, converted = _convert(datatype, value)
        if not ok:
            raise _bad(name, f"element {i} is {value!r}, which {datatype} cannot hold")
        out.append(converted)
    return InputTensor(name, datatype, shape, out)


def _checked_shape(name: str, datatype: str, shape: Sequence[int]) -> tuple[tuple[int, ...], int]:
    if datatype not in DATATYPES:
        raise _bad(
            name, f"unknown datatype {datatype!r}; use one of {', '.join(sorted(DATATYPES))}"
        )
    dims = tuple(int(d) for d in shape)
    if not dims or any(d < 0 for d in dims):
        raise _bad(name, f"shape {list(dims)} must have at least one dimension, none negative")
    return dims, math.prod(dims)


def _split_bytes(name: str, raw: bytes, count: int) -> list[Scalar]:
    out: list[Scalar] = []
    offset = 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise _bad(name, f"BYTES element {len(out)} has a truncated length prefix")
        (size,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + size > len(raw):
            raise _bad(name, f"BYTES element {len(out)} claims {size} bytes past the end")
        out.append(_text(name, raw[offset : offset + size], len(out)))
        offset += size
    if len(out) != count:
        raise _bad(name, f"shape needs {count} BYTES elements, got {len(out)}")
    return out


def _text(name: str, value: bytes, index: int) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad(name, f"BYTES element {index} is not UTF-8 text") from None


def _flatten(values: Any) -> list[Any]:
    if not isinstance(values, list | tuple):
        return [values]
    out: list[Any] = []
    for v in values:
        out.extend(_flatten(v) if isinstance(v, list | tuple) else [v])
    return out


def _convert(datatype: str, value: Any) -> tuple[bool, Scalar]:
    if value is None:
        return True, None
    if datatype == "BYTES":
        if isinstance(value, bytes):
            try:
                return True, value.decode("utf-8")
            except UnicodeDecodeError:
                return False, None
        return isinstance(value, str), value
    if datatype == "BOOL":
        return isinstance(value, bool), value
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False, None
    if datatype in INTEGERS:
        if isinstance(value, float) and not value.is_integer():
            return False, None
        return True, int(value)
    return True, float(value)


# -- tensors → rows -------------------------------------------------------------------------------


def rows_from_tensors(signature: Signature, tensors: Sequence[InputTensor]) -> list[dict[str, Any]]:
    """The family's input items for ``tensors`` (one dict per row), or ``InvalidInput``."""
    where = f"inputs do not fit model {signature.model!r} version {signature.version}"
    kinds = signature.kinds or {t.name: "any" for t in tensors}
    if not tensors:
        raise InvalidInput(where, [Issue("inputs", f"none given; expected {_expected(signature)}")])
    if len(tensors) == 1 and tensors[0].name not in kinds and len(kinds) > 0:
        return _rows_from_matrix(signature, tensors[0], where)
    issues: list[Issue] = []
    seen: dict[str, InputTensor] = {}
    for t in tensors:
        loc = f"input {t.name!r}"
        if t.name in seen:
            issues.append(Issue(loc, "given more than once"))
        elif t.name not in kinds:
            issues.append(Issue(loc, f"not an input of this model; inputs are {_names(kinds)}"))
        else:
            seen[t.name] = t
            kind = kinds[t.name]
            if t.datatype not in ACCEPTS[kind]:
                issues.append(Issue(loc, f"datatype is {t.datatype}, expected {TAKES[kind]}"))
            if len(t.shape) > 2 or (len(t.shape) == 2 and t.shape[1] != 1):
                issues.append(Issue(loc, f"shape is {list(t.shape)}, expected [N, 1] or [N]"))
    for name, kind in kinds.items():
        if name not in seen:
            spec = f"{ADVERTISED[kind]} [N, 1], a {kind} feature"
            issues.append(Issue(f"input {name!r}", f"missing ({spec})"))
    rows = {t.shape[0] for t in seen.values()}
    if len(rows) > 1:
        sizes = ", ".join(f"{t.name!r}: {t.shape[0]}" for t in seen.values())
        issues.append(Issue("inputs", f"row counts differ ({sizes})"))
    if issues:
        raise InvalidInput(where, issues)
    n = rows.pop()
    columns = {name: [_item(v) for v in seen[name].data] for name in kinds}
    return [{name: columns[name][i] for name in kinds} for i in range(n)]


def _rows_from_matrix(signature: Signature, t: InputTensor, where: str) -> list[dict[str, Any]]:
    kinds = signature.kinds
    loc = f"input {t.name!r}"
    width = len(kinds)
    if len(t.shape) != 2 or t.shape[1] != width:
        what = (
            f"not a feature name, so it must hold all {width} features in order "
            f"({_names(kinds)}): shape [N, {width}], got {list(t.shape)}"
        )
        raise InvalidInput(where, [Issue(loc, what)])
    unfit = [f"{n!r} takes {TAKES[k]}" for n, k in kinds.items() if t.datatype not in ACCEPTS[k]]
    if unfit:
        what = f"datatype {t.datatype} does not fit every feature: {'; '.join(unfit)}"
        raise InvalidInput(where, [Issue(loc, what)])
    names = list(kinds)
    data = [_item(v) for v in t.data]
    return [
        dict(zip(names, data[i * width : (i + 1) * width], strict=True)) for i in range(t.shape[0])
    ]


def _item(value: Scalar) -> Scalar:
    return None if isinstance(value, float) and math.isnan(value) else value


def _names(kinds: Mapping[str, str]) -> str:
    return ", ".join(repr(n) for n in kinds)


def _expected(signature: Signature) -> str:
    return f"one [N, 1] tensor per input ({_names(signature.kinds)})"


def _bad(name: str, message: str) -> InvalidInput:
    return InvalidInput("invalid tensor", [Issue(f"input {name!r}", message)])


# -- outputs → tensors ----------------------------------------------------------------------------


def tensors_from_outputs(
    outputs: Sequence[Mapping[str, Any]], signature: Signature, requested: Sequence[str] = ()
) -> list[OutputTensor]:
    """One tensor per output key (see the module docstring), in ``requested`` order if given."""
    known = [spec.name for spec in signature.outputs]
    for output in outputs:  # keys some outputs only have (e.g. the tabular ``warnings``)
        for key in output:
            if key not in known:
                known.append(key)
    unknown = [name for name in requested if name not in known]
    if unknown:
        issues = [Issue(f"output {n!r}", f"not an output; outputs are {known}") for n in unknown]
        raise InvalidInput("unknown requested output", issues)
    tensors = []
    for name in requested or known:
        tensor = _output_tensor(name, [o.get(name) for o in outputs], signature)
        if tensor is not None:
            tensors.append(tensor)
    return tensors


def _output_tensor(name: str, values: list[Any], signature: Signature) -> OutputTensor | None:
    spec = next((s for s in signature.outputs if s.name == name), None)
    if not values:
        if spec is None:
            return None
        empty = tuple(0 if i == 0 else max(d, 0) for i, d in enumerate(spec.shape))
        return OutputTensor(name, spec.datatype, empty, [], spec.parameters)
    if all(v is None for v in values):
        return None
    if all(isinstance(v, Mapping) for v in values):
        labels = list(values[0])
        rows = [[row.get(label) for label in labels] for row in values]
        flat = [v for row in rows for v in row]
        datatype = _datatype_of(flat)
        params = {"classes": json.dumps(labels)}
        return OutputTensor(name, datatype, (len(values), len(labels)), flat, params)
    flat = [json.dumps(v) if isinstance(v, list | dict) else v for v in values]
    return OutputTensor(name, _datatype_of(flat), (len(values),), flat)


def _datatype_of(values: Sequence[Any]) -> str:
    """BOOL, INT64 or FP64 when every value is one (INT64 with a missing value: FP64), else
    BYTES."""
    present = [v for v in values if v is not None]
    if all(isinstance(v, bool) for v in present):
        return "BOOL"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "INT64" if len(present) == len(values) else "FP64"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return "FP64"
    return "BYTES"


def output_values(tensor: OutputTensor) -> list[Scalar]:
    """``tensor.data`` as its datatype holds it (``None`` → NaN for numbers, text for BYTES)."""
    if tensor.datatype == "BYTES":
        return [v if isinstance(v, str) else json.dumps(v) for v in tensor.data]
    if tensor.datatype in ("FP16", "FP32", "FP64"):
        return [math.nan if v is None else float(v) for v in tensor.data]
    return list(tensor.data)


def raw_bytes(tensor: OutputTensor) -> bytes:
    """The tensor's raw little-endian bytes (see the module docstring)."""
    values = output_values(tensor)
    if tensor.datatype == "BYTES":
        parts = [str(v).encode("utf-8") for v in values]
        return b"".join(struct.pack("<I", len(p)) + p for p in parts)
    return np.asarray(values, dtype=NUMPY_TYPES[tensor.datatype]).tobytes()


# -- signatures -----------------------------------------------------------------------------------


def signature_of(
    model: str, version: str, family: str, described: Mapping[str, Any], schemas: FamilySchemas
) -> Signature:
    """The tensors of a fitted model from its ``describe()`` (falling back to its schemas)."""
    features = described.get("features")
    if isinstance(features, Mapping) and features:
        kinds = {str(k): str(v) for k, v in features.items() if v in ACCEPTS}
    else:
        kinds = _kinds_of(schemas.input)
    inputs = tuple(
        TensorSpec(name, ADVERTISED[kind], (-1, 1), {"kind": kind}) for name, kind in kinds.items()
    )
    return Signature(
        model, version, f"learnloop-{family}", kinds, inputs, _outputs_of(described, schemas)
    )


@dataclass(frozen=True)
class FamilySchemas:
    """A family's ``Input``/``Output`` pydantic classes (the fallback source of tensors)."""

    input: type[BaseModel]
    output: type[BaseModel]


def _kinds_of(schema: type[BaseModel]) -> dict[str, str]:
    kinds = {}
    for name, prop in schema.model_json_schema().get("properties", {}).items():
        types = {p.get("type") for p in prop.get("anyOf", [prop])} - {"null"}
        formats = {p.get("format") for p in prop.get("anyOf", [prop])}
        if types and types <= {"number", "integer"}:
            kinds[name] = "numeric"
        elif types == {"string"} and formats & {"date-time", "date"}:
            kinds[name] = "datetime"
        elif types and types <= {"string", "boolean", "integer"}:
            kinds[name] = "categorical"
    return kinds


def _outputs_of(described: Mapping[str, Any], schemas: FamilySchemas) -> tuple[TensorSpec, ...]:
    task, classes = described.get("task"), described.get("classes")
    if isinstance(classes, list):
        classes = [c.item() if isinstance(c, np.generic) else c for c in classes]
    if task == "regression":
        return (TensorSpec("prediction", "FP64", (-1,)),)
    if task == "classification" and isinstance(classes, list) and classes:
        labels = json.dumps([str(c) for c in classes])
        return (
            TensorSpec("prediction", _datatype_of(classes), (-1,)),
            TensorSpec("probabilities", "FP64", (-1, len(classes)), {"classes": labels}),
        )
    specs = []
    for name, prop in schemas.output.model_json_schema().get("properties", {}).items():
        types = {p.get("type") for p in prop.get("anyOf", [prop])} - {"null"}
        if types == {"object"}:
            specs.append(TensorSpec(name, "FP64", (-1, -1)))
        else:
            datatype = {frozenset({"boolean"}): "BOOL", frozenset({"integer"}): "INT64"}.get(
                frozenset(types), "FP64" if types <= {"number", "integer"} and types else "BYTES"
            )
            specs.append(TensorSpec(name, datatype, (-1,)))
    return tuple(specs)


# -- the data plane -------------------------------------------------------------------------------
