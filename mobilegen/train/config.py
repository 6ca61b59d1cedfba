"""What `train` takes (TrainConfig, one field per CLI option) and what it gives back (TrainResult).

No TensorFlow here: the CLI and `build` validate options before paying TensorFlow's import.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from mobilegen.errors import UserInputError
from mobilegen.inputs import DEFAULT_MEAN, DEFAULT_STD

ARCHS = ("v1", "v2")
# The widths Keras publishes MobileNet weights for (what --base-weights files fit).
ALPHAS = {"v1": (0.25, 0.5, 0.75, 1.0), "v2": (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)}
# Keras' published input sizes (128 .. 224; V2 also 96, which V1 trains at too: the tests use it).
RESOLUTIONS = (96, 128, 160, 192, 224)
DISTRIBUTE = ("none", "multiworker")

# Defaults measured on the built-in dataset (benchmarks/TRAIN_RESULTS.md): MobileNet V1 0.25 at
# 128 px from scratch, 1200 training images, batch 32. It sits near chance for the first epochs;
# Adam peaking at 2e-2 left that plateau soonest: 90.3% validation accuracy after 20 epochs
# (1e-2: 72% after 20, 93% after 30; 2e-2 with batch 16: 84% after 20; 1e-3 .. 3e-3 without a
# warm-up: under 30% after 10). 20 epochs take ~3 minutes on 2 cores (`make demo`'s budget).
DEFAULT_EPOCHS = 20
DEFAULT_BATCH = 32
# Adam's peak rate from scratch (after a warm-up, then a cosine decay to 0; see above).
DEFAULT_LR_SCRATCH = 2e-2
# Only the head trains on cached bottlenecks: a linear model, so a larger rate converges fastest.
DEFAULT_LR_HEAD = 1e-2
# Fine-tuning trained blocks: a rate this low keeps them near the base weights.
DEFAULT_LR_FINE_TUNE = 1e-4
DEFAULT_FINE_TUNE_EPOCHS = 5
DEFAULT_PATIENCE = 8
DEFAULT_VAL_SPLIT = 0.2
DEFAULT_DROPOUT = 0.2
DEFAULT_LABEL_SMOOTHING = 0.1


@dataclass
class TrainConfig:
    data: str | Path  # an image folder, or "builtin"
    out: Path
    arch: str = "v1"
    alpha: float = 0.25
    resolution: int = 128
    base_weights: Path | None = None
    fine_tune: int = 0  # top blocks unfrozen after the head trained (needs base_weights)
    epochs: int = DEFAULT_EPOCHS  # head epochs with base weights, whole-network epochs without
    fine_tune_epochs: int = DEFAULT_FINE_TUNE_EPOCHS
    batch_size: int = DEFAULT_BATCH  # global: split across workers under --distribute multiworker
    learning_rate: float | None = None  # None: DEFAULT_LR_HEAD with base weights, else DEFAULT_LR_SCRATCH
    fine_tune_learning_rate: float = DEFAULT_LR_FINE_TUNE
    val_split: float = DEFAULT_VAL_SPLIT
    seed: int = 0
    augment: bool = True  # images only: cached bottlenecks are never augmented
    patience: int = DEFAULT_PATIENCE  # epochs without a better val loss before stopping (0: never)
    cache_dir: Path | None = None  # None: $MOBILEGEN_CACHE/bottlenecks or ~/.cache/mobilegen/bottlenecks
    distribute: str = "none"
    mean: float = DEFAULT_MEAN
    std: float = DEFAULT_STD
    dropout: float = DEFAULT_DROPOUT
    label_smoothing: float = DEFAULT_LABEL_SMOOTHING
    verbose: bool = True  # progress bars on stderr (when it is a terminal)
    shard_size: int = 512  # images per bottleneck shard (mobilegen.train.bottleneck.SHARD_SIZE)

    def validate(self) -> None:
        """One-line UserInputError for any option out of range."""
        if self.arch not in ARCHS:
            raise UserInputError(f"--arch {self.arch}: expected one of {', '.join(ARCHS)}")
        if float(self.alpha) not in ALPHAS[self.arch]:
            allowed = ", ".join(str(a) for a in ALPHAS[self.arch])
            raise UserInputError(f"--alpha {self.alpha}: MobileNet {self.arch.upper()} widths are {allowed}")
        if int(self.resolution) != self.resolution or int(self.resolution) not in RESOLUTIONS:
            raise UserInputError(f"--resolution {self.resolution}: expected one of {', '.join(map(str, RESOLUTIONS))}")
        if self.distribute not in DISTRIBUTE:
            raise UserInputError(f"--distribute {self.distribute}: expected one of {', '.join(DISTRIBUTE)}")
        for name, value, lo in (("--epochs", self.epochs, 1), ("--batch-size", self.batch_size, 1),
                                ("--fine-tune", self.fine_tune, 0), ("--fine-tune-epochs", self.fine_tune_epochs, 1),
                                ("--patience", self.patience, 0)):
            if int(value) != value or value < lo:
                raise UserInputError(f"{name} {value}: expected an integer >= {lo}")
        for name, value in (("--learning-rate", self.learning_rate), ("--fine-tune-learning-rate", self.fine_tune_learning_rate)):
            if value is not None and not value > 0:
                raise UserInputError(f"{name} {value}: expected a positive number")
        if not 0.0 <= self.val_split < 1.0:
            raise UserInputError(f"--val-split {self.val_split}: expected a number in [0, 1)")
        if self.std == 0:
            raise UserInputError("--std 0: expected a non-zero number")
        if not 0.0 <= self.dropout < 1.0:
            raise UserInputError(f"dropout {self.dropout}: expected a number in [0, 1)")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise UserInputError(f"label smoothing {self.label_smoothing}: expected a number in [0, 1)")
        if self.base_weights is not None and not Path(self.base_weights).is_file():
            raise UserInputError(f"--base-weights {self.base_weights}: no such file (a Keras .weights.h5 or .h5 of the base network)")
        if self.fine_tune and self.base_weights is None:
            raise UserInputError("--fine-tune needs --base-weights (without them the whole network trains already)")

    def head_learning_rate(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return DEFAULT_LR_HEAD if self.base_weights is not None else DEFAULT_LR_SCRATCH

    def as_json(self) -> dict:
        d = asdict(self)
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in d.items()}


@dataclass
class TrainResult:
    out: Path
    model: Path  # out/model.keras
    labels: Path  # out/labels.txt
    metrics_path: Path  # out/metrics.json
    base_weights: Path  # out/base.weights.h5
    logs: Path  # out/logs (event files: train/, validation/)
    metrics: dict = field(default_factory=dict)  # the contents of metrics.json
