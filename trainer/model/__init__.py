"""YOLOv4-tiny model, its decoding and batched NMS."""
from trainer.model.decode import decode, postprocess
from trainer.model.yolo import DEFAULT_ANCHORS, DEFAULT_ANCHORS_MASK, YoloV4Tiny

__all__ = ["YoloV4Tiny", "DEFAULT_ANCHORS", "DEFAULT_ANCHORS_MASK", "decode", "postprocess"]
