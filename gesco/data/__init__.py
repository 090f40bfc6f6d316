"""Data: procedural synthetic street scenes and loaders for Cityscapes, COCO-Stuff, ADE20K."""

from gesco.data.synthetic import SceneSample, generate_scene

__all__ = ["SceneSample", "generate_scene"]
