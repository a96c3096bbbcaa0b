"""The official model sizes: depth/width multipliers, depthwise flag and test input size."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelConfig:
    name: str
    family: str  # "darknet" (Darknet-53 + YOLOFPN, LeakyReLU) or "csp" (CSPDarknet + PAFPN, SiLU)
    depth: float
    width: float
    depthwise: bool
    input_size: int  # side of the square test input of the official exp
    params: int  # learnable parameters at 80 classes (spec table; the tests check the models against it)


CONFIGS: dict[str, ModelConfig] = {
    "darknet53": ModelConfig("darknet53", "darknet", 1.0, 1.0, False, 640, 63_724_767),
    "nano": ModelConfig("nano", "csp", 0.33, 0.25, True, 416, 912_159),
    "tiny": ModelConfig("tiny", "csp", 0.33, 0.375, False, 416, 5_055_855),
    "s": ModelConfig("s", "csp", 0.33, 0.50, False, 640, 8_968_255),
    "m": ModelConfig("m", "csp", 0.67, 0.75, False, 640, 25_326_495),
    "l": ModelConfig("l", "csp", 1.0, 1.0, False, 640, 54_208_895),
    "x": ModelConfig("x", "csp", 1.33, 1.25, False, 640, 99_071_455),
}

MODEL_NAMES = tuple(CONFIGS)


def canonical_name(name: str) -> str:
    """"yolox_nano", "YOLOX-Nano", "nano" -> "nano"; raises ValueError for an unknown name."""
    if not isinstance(name, str):
        raise ValueError(f"model name must be a string, got {type(name).__name__}")
    key = name.strip().lower().replace("-", "_")
    if key.startswith("yolox_"):
        key = key[len("yolox_"):]
    if key not in CONFIGS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(MODEL_NAMES)} (optionally prefixed 'yolox_')")
    return key


def get_config(name: str) -> ModelConfig:
    return CONFIGS[canonical_name(name)]
