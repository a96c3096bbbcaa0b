"""YOLOX models with the official module names: Darknet-53 + YOLOFPN and CSPDarknet + YOLOPAFPN families."""

from .blocks import (
    BaseConv,
    Bottleneck,
    CSPLayer,
    DWConv,
    Focus,
    ResLayer,
    SPPBottleneck,
    get_activation,
    space_to_depth,
    space_to_depth_backward,
)
from .configs import CONFIGS, MODEL_NAMES, ModelConfig, canonical_name, get_config
from .darknet import CSPDarknet, Darknet
from .flops import count_flops
from .fpn import YOLOFPN, PlainFeatures
from .head import YOLOXHead
from .pafpn import YOLOPAFPN
from .yolox import (
    YOLOX,
    get_model,
    yolox_csp,
    yolox_darknet53,
    yolox_l,
    yolox_m,
    yolox_nano,
    yolox_s,
    yolox_tiny,
    yolox_x,
)

__all__ = [
    "BaseConv", "Bottleneck", "CONFIGS", "CSPDarknet", "CSPLayer", "DWConv", "Darknet", "Focus", "MODEL_NAMES",
    "ModelConfig", "PlainFeatures", "ResLayer", "SPPBottleneck", "YOLOFPN", "YOLOPAFPN", "YOLOX", "YOLOXHead",
    "canonical_name", "count_flops", "get_activation", "get_config", "get_model", "space_to_depth",
    "space_to_depth_backward", "yolox_csp", "yolox_darknet53", "yolox_l", "yolox_m", "yolox_nano", "yolox_s",
    "yolox_tiny", "yolox_x",
]
