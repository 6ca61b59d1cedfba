"""TFLite model metadata (the tflite-support metadata schema), read and written without TensorFlow.

Where it lives in a .tflite file (metadata_schema.fbs and MetadataPopulator of tensorflow/tflite-support):
- a `ModelMetadata` flatbuffer (file identifier "M001", `min_parser_version` set) is the data of one
  of the Model's buffers, and a Model.metadata entry named "TFLITE_METADATA" points at that buffer;
- the input's TensorMetadata carries a ProcessUnit whose options are NormalizationOptions(mean[], std[])
  (x = (pixel - mean) / std, one value for every channel or one per channel);
- the output's TensorMetadata names an AssociatedFile "labels.txt" of type TENSOR_AXIS_LABELS;
- associated files are packed as an uncompressed zip appended after the flatbuffer, its offsets
  counted from the start of the file (what Python's zipfile writes when appending to a model).

Reading walks the flatbuffer tables with bounds-checked struct reads (the flatbuffers runtime does
not verify buffers), so a corrupt metadata buffer is a one-line error, never an IndexError.

Writing needs no object API: the original model flatbuffer is kept byte for byte at the end of a
new flatbuffer (so every offset inside it stays valid, and every 16-byte alignment with it), and a
new root Model table in front re-uses its fields, with a new `buffers` vector (one more Buffer: the
metadata) and a new `metadata` vector. An existing "TFLITE_METADATA" entry is replaced, not
duplicated; a model written here is unwrapped first, so rewriting gives the same bytes as writing
the original once. The old root table stays in the file unreferenced (a few hundred bytes).

tflite-support itself does not install next to TensorFlow 2.21 (it pins protobuf < 4). Checked once in
a separate environment with tflite-support 0.4.4: its MetadataDisplayer (flatbuffers-verified) shows
every field written here, finds labels.txt among the packed files, and the Task library's
ImageClassifier loads such a model and names its classes from the labels; in the other direction its
image_classifier MetadataWriter's output reads back here (tests/test_metadata.py keeps one).
"""

from __future__ import annotations

import io
import math
import struct
import zipfile
from dataclasses import dataclass
from typing import Sequence

from mobilegen.errors import ModelFormatError, UserInputError
from mobilegen.inputs import first_empty_label

MODEL_IDENTIFIER = b"TFL3"
METADATA_IDENTIFIER = b"M001"
METADATA_NAME = "TFLITE_METADATA"
# The oldest metadata parser that understands every field written here (metadata_version.cc: none
# of the fields that need 1.0.1 or later: vocabulary files, subgraph process units, tensor groups,
# audio, file versions, custom metadata).
MIN_PARSER_VERSION = "1.0.0"
LABELS_FILE = "labels.txt"
LABELS_DESCRIPTION = "Labels for the classes of the output, one per line, in output order."

# Enum values of metadata_schema.fbs.
ASSOCIATED_FILE_TENSOR_AXIS_LABELS = 2  # AssociatedFileType
PROCESS_UNIT_NORMALIZATION = 1  # ProcessUnitOptions union tag
CONTENT_FEATURE_PROPERTIES = 1  # ContentProperties union tag
CONTENT_IMAGE_PROPERTIES = 2
COLOR_SPACE_RGB = 1  # ColorSpaceType
COLOR_SPACE_GRAYSCALE = 2

# Field slots (declaration order; a union takes two: its type, then its value).
_MODEL = dict(version=0, operator_codes=1, subgraphs=2, description=3, buffers=4, metadata_buffer=5, metadata=6, signature_defs=7)
_MODEL_OFFSET_FIELDS = (1, 2, 3, 5, 7)  # copied as they are into the new root
_BUFFER = dict(data=0, offset=1, size=2)
_METADATA_ENTRY = dict(name=0, buffer=1)
_SUBGRAPH = dict(tensors=0, inputs=1, outputs=2)
_TENSOR = dict(shape=0, name=3)
_MODEL_METADATA = dict(name=0, description=1, version=2, subgraph_metadata=3, author=4, license=5, associated_files=6, min_parser_version=7)
_SUBGRAPH_METADATA = dict(input_tensor_metadata=2, output_tensor_metadata=3)
_TENSOR_METADATA = dict(name=0, description=1, content=3, process_units=4, associated_files=6)
_CONTENT = dict(properties_type=0, properties=1)
_IMAGE_PROPERTIES = dict(color_space=0)
_PROCESS_UNIT = dict(options_type=0, options=1)
_NORMALIZATION = dict(mean=0, std=1)
_ASSOCIATED_FILE = dict(name=0, description=1, type=2)

# The TFLite schema aligns buffer data to 16 bytes (Buffer.data: force_align 16).
_ALIGN = 16
# The fixed date of the zip entries, so the same inputs give the same bytes (the zip format's epoch).
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_ZIP_UNIX = 3  # ZipInfo.create_system: Unix, whatever the host


@dataclass(frozen=True)
class ModelMetadata:
    """What mobilegen reads from a model's metadata (None: not present)."""

    name: str | None = None
    description: str | None = None
    version: str | None = None
    author: str | None = None
    license: str | None = None
    labels: list[str] | None = None  # of the first output's TENSOR_AXIS_LABELS file
    mean: list[float] | None = None  # of the first input's NormalizationOptions, one or one per channel
    std: list[float] | None = None
    min_parser_version: str | None = None


# -- bounds-checked flatbuffer access ---------------------------------------------------------------
class _Bad(Exception):
    """A malformed table; turned into a one-line error naming the file and what was read."""


class _Table:
    def __init__(self, buf: bytes, pos: int):
        self.buf = buf
        self.pos = pos
        vt = pos - self._i32(pos)
        self.vt = vt
        self.vt_len = self._u16(vt)
        if self.vt_len < 4 or self.vt_len % 2 or vt + self.vt_len > len(buf):
            raise _Bad(f"a vtable at byte {vt} is {self.vt_len} bytes")
        self.obj_len = self._u16(vt + 2)

    def _get(self, fmt: str, at: int):
        if at < 0 or at + struct.calcsize(fmt) > len(self.buf):
            raise _Bad(f"byte {at} is outside the {len(self.buf)}-byte buffer")
        return struct.unpack_from(fmt, self.buf, at)[0]

    def _i32(self, at: int) -> int:
        return self._get("<i", at)

    def _u32(self, at: int) -> int:
        return self._get("<I", at)

    def _u16(self, at: int) -> int:
        return self._get("<H", at)

    @property
    def slots(self) -> int:
        return (self.vt_len - 4) // 2

    def field(self, slot: int) -> int:
        """The field's byte offset inside the table, 0 when absent."""
        if slot >= self.slots:
            return 0
        off = self._u16(self.vt + 4 + 2 * slot)
        if off and off >= self.obj_len:
            raise _Bad(f"field {slot} at offset {off} lies outside its {self.obj_len}-byte table")
        return off

    def scalar(self, slot: int, fmt: str, default=0):
        off = self.field(slot)
        return self._get(fmt, self.pos + off) if off else default

    def target(self, slot: int) -> int | None:
        """The absolute position an offset field points to."""
        off = self.field(slot)
        if not off:
            return None
        at = self.pos + off
        return self._checked(at + self._u32(at))

    def _checked(self, at: int) -> int:
        if at + 4 > len(self.buf):
            raise _Bad(f"an offset points to byte {at}, past the end of the {len(self.buf)}-byte buffer")
        return at

    def _vector(self, slot: int, elem: int) -> tuple[int, int]:
        at = self.target(slot)
        if at is None:
            return 0, 0
        n = self._u32(at)
        if at + 4 + n * elem > len(self.buf):
            raise _Bad(f"a vector of {n} entries at byte {at} runs past the end of the {len(self.buf)}-byte buffer")
        return at + 4, n

    def string(self, slot: int) -> str | None:
        start, n = self._vector(slot, 1)
        if not start:
            return None
        try:
            return self.buf[start : start + n].decode("utf-8")
        except UnicodeDecodeError:
            raise _Bad(f"the string of field {slot} is not UTF-8") from None

    def table(self, slot: int) -> "_Table | None":
        at = self.target(slot)
        return None if at is None else _Table(self.buf, at)

    def table_targets(self, slot: int) -> list[int]:
        start, n = self._vector(slot, 4)
        return [self._checked(start + 4 * i + self._u32(start + 4 * i)) for i in range(n)]

    def tables(self, slot: int) -> list["_Table"]:
        return [_Table(self.buf, at) for at in self.table_targets(slot)]

    def floats(self, slot: int) -> list[float]:
        start, n = self._vector(slot, 4)
        return list(struct.unpack_from(f"<{n}f", self.buf, start)) if n else []

    def ints(self, slot: int) -> list[int]:
        start, n = self._vector(slot, 4)
        return list(struct.unpack_from(f"<{n}i", self.buf, start)) if n else []

    def ubytes(self, slot: int) -> bytes:
        start, n = self._vector(slot, 1)
        return self.buf[start : start + n] if n else b""


def _root(buf: bytes, identifier: bytes, what: str) -> _Table:
    if len(buf) < 8 or buf[4:8] != identifier:
        raise _Bad(f"{what} has file identifier {bytes(buf[4:8])!r}, expected {identifier!r}")
    return _Table(buf, struct.unpack_from("<I", buf, 0)[0])


# -- reading ----------------------------------------------------------------------------------------
def read_metadata(buf: bytes, *, source: str = "model") -> ModelMetadata | None:
    """The metadata of .tflite bytes, or None when the model has no "TFLITE_METADATA" entry.
    Malformed metadata (bad offsets, wrong identifier, a labels file missing from the packed
    files) is a one-line UserInputError naming what is wrong."""
    buf = bytes(buf)
    if len(buf) < 8 or buf[4:8] != MODEL_IDENTIFIER:
        raise ModelFormatError(f"{source}: file identifier is {buf[4:8]!r}, expected {MODEL_IDENTIFIER!r} (not a .tflite model)")
    try:
        data = _metadata_buffer(buf)
        if data is None:
            return None
        return _parse_metadata(buf, data, source)
    except _Bad as e:
        raise UserInputError(f"{source}: malformed TFLite metadata: {e}") from None


def _metadata_buffer(buf: bytes) -> bytes | None:
    model = _root(buf, MODEL_IDENTIFIER, "the model")
    entries = model.tables(_MODEL["metadata"])
    for entry in entries:
        if entry.string(_METADATA_ENTRY["name"]) == METADATA_NAME:
            index = entry.scalar(_METADATA_ENTRY["buffer"], "<I")
            buffers = model.tables(_MODEL["buffers"])
            if index >= len(buffers):
                raise _Bad(f"the {METADATA_NAME} entry names buffer {index}; the model has {len(buffers)}")
            b = buffers[index]
            data = b.ubytes(_BUFFER["data"])
            if not data:  # a model over 2 GB keeps buffers after the flatbuffer, addressed from the file start
                offset, size = b.scalar(_BUFFER["offset"], "<Q"), b.scalar(_BUFFER["size"], "<Q")
                if offset > 1 and offset + size <= len(buf):
                    data = buf[offset : offset + size]
            if not data:
                raise _Bad(f"the {METADATA_NAME} buffer {index} is empty")
            return data
    return None


def _parse_metadata(model_buf: bytes, data: bytes, source: str) -> ModelMetadata:
    root = _root(data, METADATA_IDENTIFIER, "the metadata buffer")
    f = _MODEL_METADATA
    mean = std = labels = None
    subgraphs = root.tables(f["subgraph_metadata"])
    if subgraphs:
        inputs = subgraphs[0].tables(_SUBGRAPH_METADATA["input_tensor_metadata"])
        outputs = subgraphs[0].tables(_SUBGRAPH_METADATA["output_tensor_metadata"])
        if inputs:
            mean, std = _normalization(inputs[0])
        if outputs:
            labels = _labels(model_buf, outputs[0], source)
    return ModelMetadata(
        name=root.string(f["name"]), description=root.string(f["description"]), version=root.string(f["version"]),
        author=root.string(f["author"]), license=root.string(f["license"]), labels=labels, mean=mean, std=std,
        min_parser_version=root.string(f["min_parser_version"]),
    )


def _normalization(tensor: _Table) -> tuple[list[float] | None, list[float] | None]:
    for unit in tensor.tables(_TENSOR_METADATA["process_units"]):
        if unit.scalar(_PROCESS_UNIT["options_type"], "<B") != PROCESS_UNIT_NORMALIZATION:
            continue
        options = unit.table(_PROCESS_UNIT["options"])
        if options is None:
            raise _Bad("a NormalizationOptions process unit has no options table")
        mean, std = options.floats(_NORMALIZATION["mean"]), options.floats(_NORMALIZATION["std"])
        if not mean or not std:
            raise _Bad(f"NormalizationOptions has {len(mean)} mean and {len(std)} std values; expected both")
        if not all(math.isfinite(v) for v in mean) or not all(math.isfinite(v) and v != 0 for v in std):
            raise _Bad(f"NormalizationOptions mean {mean} / std {std}: expected finite values and a non-zero std")
        return mean, std
    return None, None


def _labels(model_buf: bytes, tensor: _Table, source: str) -> list[str] | None:
    for f in tensor.tables(_TENSOR_METADATA["associated_files"]):
        if f.scalar(_ASSOCIATED_FILE["type"], "<b") != ASSOCIATED_FILE_TENSOR_AXIS_LABELS:
            continue
        name = f.string(_ASSOCIATED_FILE["name"])
        if not name:
            raise _Bad("a TENSOR_AXIS_LABELS file has no name")
        text = _packed_file(model_buf, name)
        try:
            lines = text.decode("utf-8").splitlines()
        except UnicodeDecodeError:
            raise _Bad(f"the labels file '{name}' is not UTF-8") from None
        empty = first_empty_label(lines)
        if empty is not None:
            raise _Bad(f"the labels file '{name}' has an empty line {empty}; expected one class name per line")
        return lines
    return None


def _packed_file(model_buf: bytes, name: str) -> bytes:
    try:
        with zipfile.ZipFile(io.BytesIO(model_buf)) as zf:
            names = zf.namelist()
            if name not in names:
                raise _Bad(f"the labels file '{name}' is not among the model's packed files ({', '.join(names) or 'none'})")
            return zf.read(name)
    except zipfile.BadZipFile as e:
        raise _Bad(f"the labels file '{name}' is named, but no readable zip of associated files follows the model ({e})") from None


# -- choosing what a command uses -------------------------------------------------------------------
def image_normalization(meta: ModelMetadata | None, channels: int, *, mean: float | None = None,
                        std: float | None = None, default_mean: float, default_std: float,
                        source: str = "model") -> tuple[float, float]:
    """(mean, std) for an image input of `channels` channels: each explicit value wins, else the
    metadata's, else the default. The engines normalize every channel alike (one float mean and std,
    templates/cpp/engine/image_input.h), so per-channel metadata values that differ are a one-line
    error unless both are given explicitly."""
    meta_mean = _one_value(meta.mean, "mean", channels, source) if meta and meta.mean and mean is None else None
    meta_std = _one_value(meta.std, "std", channels, source) if meta and meta.std and std is None else None
    pick = lambda explicit, from_meta, default: explicit if explicit is not None else from_meta if from_meta is not None else default
    return float(pick(mean, meta_mean, default_mean)), float(pick(std, meta_std, default_std))


def _one_value(values: list[float], what: str, channels: int, source: str) -> float:
    if len(values) not in (1, channels):
        raise UserInputError(f"{source}: the metadata gives {len(values)} {what} values for a {channels}-channel input; expected 1 or {channels}")
    if len(set(values)) > 1:
        raise UserInputError(
            f"{source}: the metadata normalizes per channel ({what} {values}); the engines take one mean and one std "
            f"for every channel: pass --mean and --std to choose them"
        )
    return values[0]


def metadata_labels(meta: ModelMetadata | None, classes: int, *, source: str = "model") -> list[str] | None:
    """The metadata's labels for an output of `classes` classes (the first `classes` of them, as
    inputs.load_labels does with a file), or None without any."""
    if meta is None or meta.labels is None:
        return None
    if len(meta.labels) < classes:
        raise UserInputError(f"{source}: the metadata's labels file has {len(meta.labels)} labels for {classes} classes")
    return meta.labels[:classes]


# -- writing ----------------------------------------------------------------------------------------
def write_metadata(buf: bytes, *, labels: Sequence[str] | None = None, mean: float | Sequence[float] | None = None,
                   std: float | Sequence[float] | None = None, name: str | None = None, description: str | None = None,
                   version: str | None = None, author: str | None = None, license: str | None = None) -> bytes:
    """`buf` (.tflite bytes) with its metadata replaced: labels as the first output's labels.txt
    (TENSOR_AXIS_LABELS), mean/std (one value or one per channel) as the first input's
    NormalizationOptions, and the descriptive strings. None leaves a field out. Any earlier
    metadata and packed files are dropped. Deterministic: the same arguments give the same bytes."""
    import flatbuffers

    core = _flatbuffer_part(bytes(buf))
    inputs, outputs = _io_tensors(core)
    mean_l, std_l = _normalization_lists(mean, std, inputs)
    labels_l = _label_list(labels, outputs)
    meta = _metadata_flatbuffer(flatbuffers, inputs, outputs, labels_l, mean_l, std_l,
                                dict(name=name, description=description, version=version, author=author, license=license))
    out = _with_metadata_buffer(flatbuffers, core, meta)
    if labels_l is not None:
        out = _append_zip(out, {LABELS_FILE: ("\n".join(labels_l) + "\n").encode("utf-8")})
    return out


def _flatbuffer_part(buf: bytes) -> bytes:
    """The model flatbuffer alone: without a zip of associated files after it, and unwrapped when
    it was written here before."""
    if len(buf) < 8 or buf[4:8] != MODEL_IDENTIFIER:
        raise ModelFormatError(f"model: file identifier is {buf[4:8]!r}, expected {MODEL_IDENTIFIER!r} (not a .tflite model)")
    start = _zip_start(buf)
    core = buf[:start] if start is not None else buf
    try:
        return _unwrap(core)
    except _Bad as e:
        raise ModelFormatError(f"model: corrupt flatbuffer ({e})") from None


def _zip_start(buf: bytes) -> int | None:
    try:
        with zipfile.ZipFile(io.BytesIO(buf)) as zf:
            infos = zf.infolist()
            start = min((i.header_offset for i in infos), default=zf.start_dir)
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    return start if 8 < start <= len(buf) else None


def _unwrap(core: bytes) -> bytes:
    """The original model inside a flatbuffer written by _with_metadata_buffer: it starts on a
    16-byte boundary after the new root table, with its own root whose subgraphs and operator codes
    are the very ones the outer root points to."""
    outer = _root(core, MODEL_IDENTIFIER, "the model")
    want = (outer.target(_MODEL["subgraphs"]), outer.target(_MODEL["operator_codes"]))
    if want[0] is None:
        return core
    limit = min(t for t in want if t is not None)
    for s in range(_ALIGN * ((outer.pos + _ALIGN - 1) // _ALIGN), limit - 7, _ALIGN):
        if core[s + 4 : s + 8] != MODEL_IDENTIFIER:
            continue
        try:
            inner = _Table(core, s + struct.unpack_from("<I", core, s)[0])
            if (inner.target(_MODEL["subgraphs"]), inner.target(_MODEL["operator_codes"])) == want:
                return core[s:]
        except _Bad:
            continue
    return core


def _io_tensors(core: bytes) -> tuple[list[tuple[str, tuple[int, ...]]], list[tuple[str, tuple[int, ...]]]]:
    """(name, shape) of subgraph 0's inputs and outputs."""
    try:
        model = _root(core, MODEL_IDENTIFIER, "the model")
        subgraphs = model.tables(_MODEL["subgraphs"])
        if not subgraphs:
            raise _Bad("the model has no subgraph")
        sub = subgraphs[0]
        tensors = sub.tables(_SUBGRAPH["tensors"])

        def describe(i: int):
            if not 0 <= i < len(tensors):
                raise _Bad(f"a graph input or output names tensor {i}; the subgraph has {len(tensors)}")
            return tensors[i].string(_TENSOR["name"]) or f"tensor_{i}", tuple(tensors[i].ints(_TENSOR["shape"]))

        return [describe(i) for i in sub.ints(_SUBGRAPH["inputs"])], [describe(i) for i in sub.ints(_SUBGRAPH["outputs"])]
    except _Bad as e:
        raise ModelFormatError(f"model: corrupt flatbuffer ({e})") from None


def _normalization_lists(mean, std, inputs) -> tuple[list[float] | None, list[float] | None]:
    if mean is None and std is None:
        return None, None
    if mean is None or std is None:
        raise UserInputError("metadata normalization needs both mean and std (or neither)")
    if not inputs:
        raise UserInputError("the model has no input to attach the normalization to")
    as_list = lambda v: [float(x) for x in ([v] if isinstance(v, (int, float)) else v)]
    mean_l, std_l = as_list(mean), as_list(std)
    shape = inputs[0][1]
    channels = shape[-1] if shape else 1
    for what, values in (("mean", mean_l), ("std", std_l)):
        if len(values) not in (1, channels):
            raise UserInputError(f"{len(values)} {what} values for an input of {channels} channels; expected 1 or {channels}")
    if not all(math.isfinite(v) for v in mean_l) or not all(math.isfinite(v) and v != 0 for v in std_l):
        raise UserInputError(f"normalization mean {mean_l} / std {std_l}: expected finite values and a non-zero std")
    return mean_l, std_l


def _label_list(labels, outputs) -> list[str] | None:
    if labels is None:
        return None
    labels_l = [str(x) for x in labels]
    if not outputs:
        raise UserInputError("the model has no output to attach the labels to")
    classes = math.prod(outputs[0][1])
    if len(labels_l) != classes:
        raise UserInputError(f"{len(labels_l)} labels for the output '{outputs[0][0]}' of {classes} classes")
    for n, label in enumerate(labels_l, 1):
        if not label.strip() or "\n" in label or "\r" in label:
            raise UserInputError(f"label {n} ({label!r}) is empty or spans lines; expected one class name per line")
    return labels_l


def _metadata_flatbuffer(flatbuffers, inputs, outputs, labels, mean, std, strings: dict) -> bytes:
    """The ModelMetadata flatbuffer ("M001"): one SubGraphMetadata with a TensorMetadata per graph
    input and output, as the support library's populator requires."""
    b = flatbuffers.Builder(1024)

    def floats(values):
        b.StartVector(4, len(values), 4)
        for v in reversed(values):
            b.PrependFloat32(v)
        return b.EndVector()

    def offsets(items):
        b.StartVector(4, len(items), 4)
        for o in reversed(items):
            b.PrependUOffsetTRelative(o)
        return b.EndVector()

    def content(tag, props):
        b.StartObject(3)
        b.PrependUint8Slot(_CONTENT["properties_type"], tag, 0)
        b.PrependUOffsetTRelativeSlot(_CONTENT["properties"], props, 0)
        return b.EndObject()

    def tensor(name_off, content_off=None, units=None, files=None):
        b.StartObject(7)
        b.PrependUOffsetTRelativeSlot(_TENSOR_METADATA["name"], name_off, 0)
        for slot, off in ((_TENSOR_METADATA["content"], content_off), (_TENSOR_METADATA["process_units"], units),
                          (_TENSOR_METADATA["associated_files"], files)):
            if off is not None:
                b.PrependUOffsetTRelativeSlot(slot, off, 0)
        return b.EndObject()

    in_tables = []
    for k, (tname, shape) in enumerate(inputs):
        name_off = b.CreateString(tname)
        units = None
        if k == 0 and mean is not None:
            mean_off, std_off = floats(mean), floats(std)
            b.StartObject(2)
            b.PrependUOffsetTRelativeSlot(_NORMALIZATION["mean"], mean_off, 0)
            b.PrependUOffsetTRelativeSlot(_NORMALIZATION["std"], std_off, 0)
            norm = b.EndObject()
            b.StartObject(2)
            b.PrependUint8Slot(_PROCESS_UNIT["options_type"], PROCESS_UNIT_NORMALIZATION, 0)
            b.PrependUOffsetTRelativeSlot(_PROCESS_UNIT["options"], norm, 0)
            units = offsets([b.EndObject()])
        content_off = None
        if len(shape) == 4 and shape[3] in (1, 3):  # an image: [1][h][w][c], as the Task library's image APIs expect
            b.StartObject(2)
            b.PrependInt8Slot(_IMAGE_PROPERTIES["color_space"], COLOR_SPACE_RGB if shape[3] == 3 else COLOR_SPACE_GRAYSCALE, 0)
            content_off = content(CONTENT_IMAGE_PROPERTIES, b.EndObject())
        in_tables.append(tensor(name_off, content_off, units))
    out_tables = []
    for k, (tname, _) in enumerate(outputs):
        name_off = b.CreateString(tname)
        files = None
        if k == 0 and labels is not None:
            fname, fdesc = b.CreateString(LABELS_FILE), b.CreateString(LABELS_DESCRIPTION)
            b.StartObject(5)
            b.PrependUOffsetTRelativeSlot(_ASSOCIATED_FILE["name"], fname, 0)
            b.PrependUOffsetTRelativeSlot(_ASSOCIATED_FILE["description"], fdesc, 0)
            b.PrependInt8Slot(_ASSOCIATED_FILE["type"], ASSOCIATED_FILE_TENSOR_AXIS_LABELS, 0)
            files = offsets([b.EndObject()])
        b.StartObject(0)
        out_tables.append(tensor(name_off, content(CONTENT_FEATURE_PROPERTIES, b.EndObject()), None, files))
    in_vec, out_vec = offsets(in_tables), offsets(out_tables)
    b.StartObject(10)
    b.PrependUOffsetTRelativeSlot(_SUBGRAPH_METADATA["input_tensor_metadata"], in_vec, 0)
    b.PrependUOffsetTRelativeSlot(_SUBGRAPH_METADATA["output_tensor_metadata"], out_vec, 0)
    subgraphs = offsets([b.EndObject()])
    text = {k: b.CreateString(v) for k, v in sorted(strings.items()) if v is not None}
    text["min_parser_version"] = b.CreateString(MIN_PARSER_VERSION)
    b.StartObject(8)
    for key, off in text.items():
        b.PrependUOffsetTRelativeSlot(_MODEL_METADATA[key], off, 0)
    b.PrependUOffsetTRelativeSlot(_MODEL_METADATA["subgraph_metadata"], subgraphs, 0)
    b.Finish(b.EndObject(), file_identifier=METADATA_IDENTIFIER)
    return bytes(b.Output())


def _with_metadata_buffer(flatbuffers, core: bytes, meta: bytes) -> bytes:
    """A new flatbuffer: root Model table + new vectors in front, `core` unchanged behind them."""
    try:
        old = _root(core, MODEL_IDENTIFIER, "the model")
        unknown = [s for s in range(len(_MODEL), old.slots) if old.field(s)]
        if unknown:
            raise UserInputError(f"model: the Model table has field {unknown[0]}, newer than the TFLite schema this writer knows")
        buffer_positions = old.table_targets(_MODEL["buffers"])
        for i, at in enumerate(buffer_positions):
            if _Table(core, at).scalar(_BUFFER["offset"], "<Q") > 1:
                raise UserInputError(f"model: buffer {i} lies outside the flatbuffer (a model over 2 GB); writing metadata into it is not supported")
        entries = [(t.string(_METADATA_ENTRY["name"]), t.scalar(_METADATA_ENTRY["buffer"], "<I"), at)
                   for t, at in zip(old.tables(_MODEL["metadata"]), old.table_targets(_MODEL["metadata"]))]
        version = old.scalar(_MODEL["version"], "<I")
        kept = {slot: old.target(slot) for slot in _MODEL_OFFSET_FIELDS}
    except _Bad as e:
        raise ModelFormatError(f"model: corrupt flatbuffer ({e})") from None

    b = flatbuffers.Builder(len(core) + len(meta) + 4096)
    # The old model first: the builder fills back to front, so it ends up last in the file, starting
    # on a 16-byte boundary (Finish pads the total to the builder's largest alignment, 16).
    b.Prep(_ALIGN, len(core))
    b.head -= len(core)
    b.Bytes[b.head : b.head + len(core)] = core
    end = b.Offset()
    old_ref = lambda pos: end - pos  # builder offsets count from the end of the buffer

    b.StartVector(1, len(meta), _ALIGN)
    b.head -= len(meta)
    b.Bytes[b.head : b.head + len(meta)] = meta
    data = b.EndVector()
    b.StartObject(3)
    b.PrependUOffsetTRelativeSlot(_BUFFER["data"], data, 0)
    new_buffer = b.EndObject()

    buffers = [old_ref(at) for at in buffer_positions]
    metadata = [old_ref(at) for _, _, at in entries]
    existing = [k for k, (name, _, _) in enumerate(entries) if name == METADATA_NAME]
    if existing:
        # Replace the buffer of the first entry, drop any further ones (as the populator would have
        # overwritten them all with the same buffer).
        index = entries[existing[0]][1]
        if index >= len(buffers):
            raise ModelFormatError(f"model: the {METADATA_NAME} entry names buffer {index}; the model has {len(buffers)}")
        buffers[index] = new_buffer
        metadata = [m for k, m in enumerate(metadata) if k not in existing[1:]]
    else:
        buffers.append(new_buffer)
        name_off = b.CreateString(METADATA_NAME)
        b.StartObject(2)
        b.PrependUOffsetTRelativeSlot(_METADATA_ENTRY["name"], name_off, 0)
        b.PrependUint32Slot(_METADATA_ENTRY["buffer"], len(buffers) - 1, 0)
        metadata.append(b.EndObject())

    def offsets(items):
        b.StartVector(4, len(items), 4)
        for o in reversed(items):
            b.PrependUOffsetTRelative(o)
        return b.EndVector()

    buffers_vec, metadata_vec = offsets(buffers), offsets(metadata)
    b.StartObject(len(_MODEL))
    b.PrependUint32Slot(_MODEL["version"], version, 0)
    for slot, at in kept.items():
        if at is not None:
            b.PrependUOffsetTRelativeSlot(slot, old_ref(at), 0)
    b.PrependUOffsetTRelativeSlot(_MODEL["buffers"], buffers_vec, 0)
    b.PrependUOffsetTRelativeSlot(_MODEL["metadata"], metadata_vec, 0)
    b.Finish(b.EndObject(), file_identifier=MODEL_IDENTIFIER)
    return bytes(b.Output())


def _append_zip(model: bytes, files: dict[str, bytes]) -> bytes:
    """`model` with `files` appended as an uncompressed zip whose offsets count from the start of
    the model (the support library's extractors read uncompressed entries only)."""
    out = io.BytesIO()
    out.write(model)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, content in files.items():
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.create_system = _ZIP_UNIX
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_STORED
            zf.writestr(info, content)
    return out.getvalue()
