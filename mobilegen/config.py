"""`mobilegen.toml`: what `mobilegen build` makes, read and checked before any work starts.

    [model]                     # where the model comes from: train on `data`, or take `file`
    data = "builtin"            # an image folder (one subfolder per class) or "builtin"
    # file = "model.keras"      # or a .keras / .h5 / .tflite / frozen .pb / SavedModel directory
    arch = "v1"                 # training: v1 | v2 (MobileNet V1 or V2)
    alpha = 0.25                # training: V1 0.25 | 0.5 | 0.75 | 1.0; V2 0.35 .. 1.4
    resolution = 128            # training: 96 | 128 | 160 | 192 | 224
    labels = "labels.txt"       # class names (default: from training, the model's metadata, or data)

    [train]                     # options of `mobilegen train` (defaults: train's own)
    [convert]                   # quantize = the deployed model: float32 | float16 | dynamic | int8 ...
    [targets]                   # platforms = ["android", "ios"], app_name, precision, fp16_tolerance
    [android]                   # package, name
    [ios]                       # bundle_id, module
    [verify]                    # backends = ["cpu", "gpu"]

Every section and key is listed in SCHEMA with its type and allowed values; anything else is a
one-line error naming the key and what is allowed. Relative paths are relative to the file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mobilegen.convert.quantize import IO, Quantize
from mobilegen.errors import UserInputError
from mobilegen.train.config import ALPHAS as TRAIN_ALPHAS, ARCHS as TRAIN_ARCHS, RESOLUTIONS as TRAIN_RESOLUTIONS

CONFIG_NAME = "mobilegen.toml"
BUILTIN = "builtin"  # model.data: the built-in dataset (mobilegen.data.builtin)

# What `train` accepts (mobilegen.train.config, no TensorFlow there); the width is checked per
# architecture once the architecture is known, by TrainConfig.validate.
ARCHS = TRAIN_ARCHS
ALPHAS = tuple(sorted({a for widths in TRAIN_ALPHAS.values() for a in widths}))
RESOLUTIONS = TRAIN_RESOLUTIONS
QUANTIZE = tuple(q.value for q in Quantize)  # what `convert --quantize` / `--io` take
IO_TYPES = tuple(io.value for io in IO)
PLATFORMS = ("android", "ios")
PRECISIONS = ("int8", "fp16", "fp32")
BACKENDS = ("cpu", "gpu")


_STR, _INT, _NUM, _BOOL = (str,), (int,), (int, float), (bool,)


@dataclass(frozen=True)
class Key:
    """One config key: its TOML type(s), allowed values (None: any), and whether it is a path."""

    types: tuple[type, ...]
    allowed: tuple | None = None
    path: bool = False
    list_of: bool = False  # a list whose items each pass `types` / `allowed`
    minimum: float | None = None
    above: float | None = None  # strictly greater than this
    keyword: str | None = None  # a path key's literal value that names no file ("builtin")

    def describe(self) -> str:
        if self.allowed is not None:
            one = " | ".join(str(a) for a in self.allowed)
            return f"a list of {one}" if self.list_of else one
        if self.list_of:
            what = {_STR: "strings", _INT: "integers", _NUM: "numbers"}[self.types]
        else:
            what = {_STR: "a string", _INT: "an integer", _NUM: "a number", _BOOL: "true or false"}[self.types]
        if self.minimum is not None:
            what += f" >= {self.minimum:g}"
        if self.above is not None:
            what += f" > {self.above:g}"
        return f"a list of {what}" if self.list_of else what


SCHEMA: dict[str, dict[str, Key]] = {
    "model": {
        "data": Key(_STR, path=True, keyword=BUILTIN),
        "file": Key(_STR, path=True),
        "arch": Key(_STR, ARCHS),
        "alpha": Key(_NUM, ALPHAS),
        "resolution": Key(_INT, RESOLUTIONS),
        "labels": Key(_STR, path=True),
    },
    "train": {
        "epochs": Key(_INT, minimum=1),
        "batch_size": Key(_INT, minimum=1),
        "learning_rate": Key(_NUM, above=0),
        "base_weights": Key(_STR, path=True),
        "fine_tune": Key(_INT, minimum=0),
        "fine_tune_epochs": Key(_INT, minimum=1),
        "fine_tune_learning_rate": Key(_NUM, above=0),
        "val_split": Key(_NUM, above=0),
        "seed": Key(_INT, minimum=0),
        "augment": Key(_BOOL),
        "patience": Key(_INT, minimum=0),
        "cache_dir": Key(_STR, path=True),
    },
    "convert": {
        "quantize": Key(_STR, QUANTIZE),
        "io": Key(_STR, IO_TYPES),
        "mean": Key(_NUM),
        "std": Key(_NUM, above=0),
        "calibration_samples": Key(_INT, minimum=1),
        "input_array": Key(_STR),
        "output_array": Key(_STR),
        "input_shape": Key(_INT, list_of=True, minimum=1),
    },
    "targets": {
        "platforms": Key(_STR, PLATFORMS, list_of=True),
        "app_name": Key(_STR),
        "precision": Key(_STR, PRECISIONS),
        "fp16_tolerance": Key(_NUM, above=0),
    },
    "android": {
        "package": Key(_STR),
        "name": Key(_STR),
    },
    "ios": {
        "bundle_id": Key(_STR),
        "module": Key(_STR),
    },
    "verify": {
        "backends": Key(_STR, BACKENDS, list_of=True),
    },
}


@dataclass
class BuildConfig:
    """The checked configuration: `values[section][key]` holds only what the file (or the command
    line) set; `get` supplies the defaults that belong to build itself."""

    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: Path | None = None  # the file it was read from

    def get(self, section: str, key: str, default: Any = None) -> Any:
        return self.values.get(section, {}).get(key, default)

    def set(self, section: str, key: str, value: Any) -> None:
        """A command-line override, checked like a file's value."""
        where = f"--{key.replace('_', '-')}"
        self.values.setdefault(section, {})[key] = _check(SCHEMA[section][key], value, where, Path.cwd())


def _check(key: Key, value: Any, where: str, base: Path) -> Any:
    items = value if key.list_of else [value]
    if key.list_of and (not isinstance(value, list) or not value):
        raise UserInputError(f"{where} must be {key.describe()} (a non-empty list), not {value!r}")
    for item in items:
        # TOML's booleans are not numbers here, though Python's bool is an int.
        ok = isinstance(item, key.types) and not (isinstance(item, bool) and bool not in key.types)
        if ok and key.allowed is not None:
            ok = item in key.allowed
        if ok and key.minimum is not None:
            ok = item >= key.minimum
        if ok and key.above is not None:
            ok = item > key.above
        if not ok:
            raise UserInputError(f"{where} must be {key.describe()}, not {item!r}")
    if key.path and value == key.keyword:
        return value
    if key.path:
        return (base / value).resolve() if not Path(value).is_absolute() else Path(value)
    if key.types == _NUM and not key.list_of:
        return float(value)
    return list(value) if key.list_of else value


def parse_config(data: dict, where: str, base: Path) -> BuildConfig:
    """Check a TOML document against SCHEMA; `where` names the file in errors."""
    cfg = BuildConfig()
    for section, body in data.items():
        if section not in SCHEMA:
            raise UserInputError(f"{where}: unknown section [{section}] (allowed: {', '.join(SCHEMA)})")
        if not isinstance(body, dict):
            raise UserInputError(f"{where}: '{section}' must be a [{section}] table")
        keys = SCHEMA[section]
        for name, value in body.items():
            if name not in keys:
                raise UserInputError(f"{where}: unknown key '{section}.{name}' (allowed in [{section}]: {', '.join(keys)})")
            cfg.values.setdefault(section, {})[name] = _check(keys[name], value, f"{where}: {section}.{name}", base)
    return cfg


def load_config(path: Path) -> BuildConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserInputError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserInputError(f"{path}: cannot read ({getattr(e, 'strerror', None) or e})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UserInputError(f"{path}: not valid TOML ({e})") from None
    cfg = parse_config(data, str(path), path.parent.resolve())
    cfg.source = path
    return cfg
