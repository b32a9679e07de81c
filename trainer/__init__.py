"""trainer: YOLOv4-tiny training that survives disconnects (uses drivestage for Drive)."""
__version__ = "0.1.0"
