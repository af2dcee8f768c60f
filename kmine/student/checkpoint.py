"""Saving and loading students: weights plus the config that rebuilds the network."""

from __future__ import annotations

from pathlib import Path

import torch

from kmine.fileio import load_torch, save_torch

from .model import Student, build_student

FORMAT = "kmine.student/1"
_PLAIN = (type(None), bool, int, float, str, torch.Tensor)


def _check_plain(value, where: str = "extra") -> None:
    """Raise if ``value`` holds anything ``torch.load(weights_only=True)`` would refuse."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f"{where} has key {key!r} of type {type(key).__name__}; use str")
            _check_plain(item, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
    elif not isinstance(value, _PLAIN):
        raise TypeError(f"{where} is a {type(value).__name__}; a student checkpoint holds only "
                        f"dicts, lists, str, numbers, None and tensors (convert it first)")


def save_student(student: Student, path: str | Path, extra: dict | None = None) -> None:
    """Write ``student``'s config, weights and ``extra`` (plain data: metrics, epoch, ...)
    to ``path`` atomically."""
    extra = dict(extra or {})
    _check_plain(extra)
    payload = {"format": FORMAT, "config": dict(student.config),
               "state_dict": {k: v.detach().cpu() for k, v in student.state_dict().items()},
               "extra": extra}
    save_torch(payload, path)


def read_student_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """The raw checkpoint dict (``format``, ``config``, ``state_dict``, ``extra``)."""
    payload = load_torch(path, map_location)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a kmine student checkpoint (expected format {FORMAT!r}; "
                         f"save one with kmine.student.save_student)")
    return payload


def load_student(path: str | Path, map_location="cpu") -> Student:
    """Rebuild the student saved at ``path`` and load its weights (strict). The saved
    ``extra`` dict is attached as ``student.extra``. Needs no ImageNet checkpoint."""
    payload = read_student_checkpoint(path, map_location)
    config = payload["config"]
    student = build_student(config["encoder"], pretrained=False)
    student.config["pretrained"] = config.get("pretrained", False)
    student.load_state_dict(payload["state_dict"], strict=True)
    student.extra = payload.get("extra", {})
    return student


def load_encoder(student: Student, path: str | Path) -> dict:
    """Copy the encoder weights of the student checkpoint at ``path`` (e.g. from SimCLR
    pretraining) into ``student``; its decoder is left as it is. Returns the checkpoint's
    ``extra``."""
    payload = read_student_checkpoint(path)
    saved = payload["config"]["encoder"]
    if saved != student.encoder_name:
        raise ValueError(f"{path} holds a {saved} encoder but this student uses {student.encoder_name}; "
                         f"pretrain with the same encoder")
    prefix = "model.encoder."
    weights = {k[len(prefix):]: v for k, v in payload["state_dict"].items() if k.startswith(prefix)}
    student.model.get_submodule("encoder").load_state_dict(weights, strict=True)
    return payload.get("extra", {})


__all__ = ["save_student", "load_student", "load_encoder", "read_student_checkpoint"]
