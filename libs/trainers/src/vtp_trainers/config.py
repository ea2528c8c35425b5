"""The config models a training job carries: `BasicConfig` (every framework) and `UltralyticsAdvanced`.

Both forbid unknown keys, so a typo is an error rather than a silently ignored
setting. Field descriptions, ranges and (for advanced keys) a `group` end up in
the JSON schema the UI renders from.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidatorFunctionWrapHandler, field_validator
from pydantic_core import PydanticCustomError

IMGSZ_STRIDE = 32

_Layer = Annotated[int, Field(ge=0, le=1000)]

Group = Literal["optimizer", "schedule", "loss", "augmentation", "data", "model"]

# Display order and one-line meaning of each advanced group.
GROUPS: dict[Group, str] = {
    "optimizer": "Optimizer settings beyond the learning rate.",
    "schedule": "Learning-rate and warm-up schedule.",
    "loss": "Loss gains: how much each loss term weighs.",
    "augmentation": "Training-time image augmentation.",
    "data": "How training batches are built from the dataset.",
    "model": "Which parts of the network train, and how.",
}


class BasicConfig(BaseModel):
    """The settings every job has; the UI shows them without an "advanced" toggle."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: int = Field(50, ge=1, le=10_000, description="Passes over the training set.")
    batch: int = Field(16, ge=-1, le=1024, description="Images per batch; -1 lets the trainer pick (AutoBatch).")
    imgsz: int = Field(
        640,
        ge=32,
        le=4096,
        description="Training image size in pixels (square); a multiple of 32.",
        json_schema_extra={"multipleOf": IMGSZ_STRIDE},
    )
    lr0: float = Field(0.01, gt=0, le=1, description="Initial learning rate (ignored when `optimizer` is auto).")
    optimizer: Literal["auto", "SGD", "Adam", "AdamW", "NAdam", "RAdam", "RMSProp"] = Field(
        "auto", description="Optimizer; auto picks one and its learning rate from the run length."
    )
    patience: int = Field(100, ge=0, description="Stop after this many epochs without improvement; 0 never stops.")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Random seed; training is deterministic.")
    device: Literal["auto", "cpu", "gpu"] = Field("auto", description="Where to train; auto uses a GPU when present.")
    gpus: int = Field(1, ge=0, le=16, description="GPUs one job uses.")
    workers: int = Field(2, ge=0, le=32, description="Data-loader worker processes.")
    amp: bool = Field(True, description="Mixed-precision training.")
    cache: bool = Field(False, description="Cache decoded images in RAM.")
    time_limit_minutes: int | None = Field(
        None, gt=0, description="Wall-clock limit; the job fails with TIMEOUT when exceeded. None: no limit."
    )

    @field_validator("batch")
    @classmethod
    def _batch_not_zero(cls, value: int) -> int:
        # One range (-1..1024) keeps the schema and the errors simple; 0 is its only hole.
        if value == 0:
            raise PydanticCustomError(
                "greater_than_equal", "Input should be greater than or equal to 1, or -1 for AutoBatch", {"ge": 1}
            )
        return value

    @field_validator("imgsz")
    @classmethod
    def _imgsz_stride(cls, value: int) -> int:
        # A custom code rather than pydantic's `multiple_of`: clients key their hint on it.
        if value % IMGSZ_STRIDE:
            raise PydanticCustomError(
                "imgsz_not_multiple_of_32",
                "imgsz must be a multiple of 32 (the model stride), e.g. {lower} or {upper}",
                {"lower": value // IMGSZ_STRIDE * IMGSZ_STRIDE, "upper": (value // IMGSZ_STRIDE + 1) * IMGSZ_STRIDE},
            )
        return value


def _hp(
    default: Any,
    group: Group,
    description: str,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
) -> Any:
    """An advanced field: the Ultralytics default, its group and range."""
    return Field(default, description=description, json_schema_extra={"group": group}, ge=ge, gt=gt, le=le, lt=lt)


class UltralyticsAdvanced(BaseModel):
    """Ultralytics `train()` hyper-parameters users tune; names and defaults are Ultralytics' own.

    Only the keys a user sets are passed on (see `ResolvedJobConfig.advanced_set`),
    so Ultralytics' defaults stay in force for the rest.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # optimizer
    momentum: float = _hp(0.937, "optimizer", "SGD momentum / Adam beta1.", ge=0, le=1)
    weight_decay: float = _hp(0.0005, "optimizer", "L2 weight decay.", ge=0, le=0.1)
    nbs: int = _hp(
        64, "optimizer", "Nominal batch size: gradients accumulate to about this many images.", ge=1, le=1024
    )
    # schedule
    lrf: float = _hp(0.01, "schedule", "Final learning rate as a fraction of lr0.", ge=0, le=1)
    cos_lr: bool = _hp(False, "schedule", "Cosine instead of linear learning-rate decay.")
    warmup_epochs: float = _hp(3.0, "schedule", "Warm-up length in epochs (fractions allowed).", ge=0, le=100)
    warmup_momentum: float = _hp(0.8, "schedule", "Momentum at the start of warm-up.", ge=0, le=1)
    warmup_bias_lr: float = _hp(0.1, "schedule", "Bias learning rate at the start of warm-up.", ge=0, le=1)
    close_mosaic: int = _hp(10, "schedule", "Turn mosaic off for the last N epochs; 0 keeps it on.", ge=0, le=10_000)
    # loss
    box: float = _hp(7.5, "loss", "Box regression loss gain.", ge=0, le=100)
    cls: float = _hp(0.5, "loss", "Classification loss gain.", ge=0, le=100)
    dfl: float = _hp(1.5, "loss", "Distribution focal loss gain.", ge=0, le=100)
    pose: float = _hp(12.0, "loss", "Keypoint loss gain (pose only).", ge=0, le=100)
    kobj: float = _hp(1.0, "loss", "Keypoint objectness loss gain (pose only).", ge=0, le=100)
    # augmentation
    hsv_h: float = _hp(0.015, "augmentation", "Hue jitter (fraction).", ge=0, le=1)
    hsv_s: float = _hp(0.7, "augmentation", "Saturation jitter (fraction).", ge=0, le=1)
    hsv_v: float = _hp(0.4, "augmentation", "Brightness jitter (fraction).", ge=0, le=1)
    degrees: float = _hp(0.0, "augmentation", "Random rotation, +/- degrees.", ge=0, le=180)
    translate: float = _hp(0.1, "augmentation", "Random translation, +/- fraction of the image.", ge=0, le=1)
    scale: float = _hp(0.5, "augmentation", "Random scale gain, +/-.", ge=0, le=1)
    shear: float = _hp(0.0, "augmentation", "Random shear, +/- degrees.", ge=0, le=90)
    perspective: float = _hp(0.0, "augmentation", "Random perspective (fraction); keep tiny.", ge=0, le=0.001)
    flipud: float = _hp(0.0, "augmentation", "Vertical flip probability.", ge=0, le=1)
    fliplr: float = _hp(0.5, "augmentation", "Horizontal flip probability.", ge=0, le=1)
    bgr: float = _hp(0.0, "augmentation", "RGB/BGR channel swap probability.", ge=0, le=1)
    mosaic: float = _hp(1.0, "augmentation", "Mosaic (4 images in one) probability.", ge=0, le=1)
    mixup: float = _hp(0.0, "augmentation", "MixUp probability.", ge=0, le=1)
    cutmix: float = _hp(0.0, "augmentation", "CutMix probability.", ge=0, le=1)
    copy_paste: float = _hp(0.0, "augmentation", "Copy-paste probability (segment only).", ge=0, le=1)
    erasing: float = _hp(0.4, "augmentation", "Random erasing probability (classify only).", ge=0, le=1)
    multi_scale: float = _hp(0.0, "augmentation", "Vary imgsz per batch by +/- this fraction; 0 is off.", ge=0, le=1)
    # data
    rect: bool = _hp(False, "data", "Rectangular batches (less padding; turns shuffling off).")
    single_cls: bool = _hp(False, "data", "Train every class as one class.")
    fraction: float = _hp(1.0, "data", "Fraction of the training set to use.", gt=0, le=1)
    overlap_mask: bool = _hp(True, "data", "Merge instance masks into one training mask (segment only).")
    mask_ratio: int = _hp(4, "data", "Training mask downsample ratio (segment only).", ge=1, le=32)
    # model
    dropout: float = _hp(0.0, "model", "Classification-head dropout (classify only).", ge=0, lt=1)
    freeze: _Layer | list[_Layer] | None = _hp(
        None, "model", "Freeze the first N layers (an integer) or the listed layer indices; None trains all."
    )

    @field_validator("freeze", mode="wrap")
    @classmethod
    def _freeze_layers(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        # The union reports one error per member; one clear error reads better. Booleans are
        # refused although lax ints take them: `freeze: true` is a mistake, not "1 layer".
        if not isinstance(value, bool):
            try:
                return handler(value)
            except ValidationError:
                pass
        raise PydanticCustomError(
            "freeze_invalid", "freeze should be a layer count (0-1000), a list of layer indices, or null"
        )
