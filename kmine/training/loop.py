"""The training loop: a supervised phase, then (for mining schedules) a mining phase.

``supervised``: labelled images only, until early stopping.
``one-time``: after the supervised phase, the best student prompts the teacher once for
every unlabelled image; training goes on over labelled ∪ pseudo-labelled images.
``continuous``: after the supervised phase, every time an unlabelled image is revisited
the same forward pass whose output enters the loss supplies the prompts (detached), and
the teacher's mask becomes that image's pseudo-label for this step.
``extended``: the same two phases with the labelled images alone (the same-compute control).
How a pseudo-label is made from the two masks is the run's ``strategy``
(:mod:`kmine.training.strategy`).

The second phase starts from the best supervised checkpoint, with a fresh optimizer and
plateau schedule (the paper's) or with the supervised phase's own (``second_phase:
continue``); its own best checkpoint (by validation loss) is the run's result. With
``perturb: pseudo`` (or ``strong``) the second phase trains on strongly perturbed views
(:mod:`kmine.training.perturb`) of the pseudo-labelled (or all) images, whose pseudo-labels
come from the weak view. With ``labelled_share`` each second-phase batch holds that share of
labelled images (:mod:`kmine.training.sampling`).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, RandomSampler
from tqdm.auto import tqdm

from kmine.data import (
    DihedralOps,
    apply_dihedral,
    collate_segmentation,
    invert_dihedral,
)
from kmine.fileio import load_torch, save_json, save_torch
from kmine.losses import dice_bce_per_image, mining_loss
from kmine.metrics import dice_iou, mean_std
from kmine.student import (
    build_student,
    load_encoder,
    read_student_checkpoint,
    save_student,
    tta_probs,
)
from kmine.teacher.types import Teacher
from kmine.training.callbacks import Callback, CallbackList
from kmine.training.config import MINING_SCHEDULES, TrainConfig
from kmine.training.perturb import cutmix, photometric, step_generator
from kmine.training.pseudo import PseudoLabeler, PseudoStats
from kmine.training.sampling import mixed_batches
from kmine.training.setup import RunData, load_run_data, resolve_device
from kmine.training.strategy import split_code

log = logging.getLogger(__name__)


class TrainingCancelled(RuntimeError):
    """A callback asked the run to stop; the last epoch checkpoint allows resuming."""


@dataclass
class TrainResult:
    out_dir: Path
    best_checkpoint: Path
    history: list[dict]
    best: dict  # the epoch record of the best checkpoint


class Trainer:
    """One training run writing to ``out_dir``: ``best.pt``, ``last.pt``, ``history.jsonl``.

    A run killed midway resumes from ``last.pt`` when started again with the same config.
    ``init_checkpoint``: a supervised best checkpoint of the same data/split/student, so a
    mining run can skip its supervised phase (experiments share it between schedules).
    """

    def __init__(
        self,
        config: TrainConfig,
        out_dir: str | Path,
        callbacks: list[Callback] | None = None,
        init_checkpoint: str | Path | None = None,
        score_pseudo_labels: bool = True,
        teacher: Teacher | None = None,
        score_true_box: bool = False,
    ):
        self.config = config
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.callbacks = CallbackList(callbacks or [])
        self.device = resolve_device(config.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # one input size: let cuDNN pick its fastest kernels
        self.init_checkpoint = Path(init_checkpoint) if init_checkpoint else None
        self.score_true_box = score_true_box
        torch.manual_seed(config.seed)
        self.data: RunData = load_run_data(config, score_pseudo_labels)
        self.student = build_student(config.encoder, pretrained=config.pretrained, weights_dir=config.weights_dir)
        if config.encoder_init:
            load_encoder(self.student, config.encoder_init)
        self.student.to(self.device)
        self._teacher = teacher
        self.labeler: PseudoLabeler | None = None
        self.history: list[dict] = []
        self.phase = "supervised"
        self.epoch = 0  # epochs finished in the current phase
        self.best_loss = float("inf")
        self.bad_epochs = 0
        self.pseudo_labels: dict[int, np.ndarray] = {}
        self._new_optimizer()

    # ----- set-up ---------------------------------------------------------------------
    def _new_optimizer(self) -> None:
        c = self.config
        self.optimizer = torch.optim.Adam(self.student.parameters(), lr=c.lr, betas=c.betas, weight_decay=c.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, mode="min", factor=c.plateau_factor, patience=c.plateau_patience, min_lr=c.min_lr
        )

    @property
    def teacher(self) -> Teacher:
        if self._teacher is None:
            from kmine.teacher import build_teacher

            self._teacher = build_teacher(
                self.config.teacher,
                weights_dir=self.config.weights_dir,
                device=str(self.device),
                checkpoint=self.config.teacher_checkpoint,
                cache_dir=self.config.cache_dir,
                cache_items=self.config.cache_items,
            )
        return self._teacher

    def _labeler(self) -> PseudoLabeler:
        if self.labeler is None:
            self.labeler = PseudoLabeler(
                self.teacher, self.config.prompts, self.config.strategy, self.config.seed, self.score_true_box
            )
        return self.labeler

    # ----- state ----------------------------------------------------------------------
    def _state(self) -> dict:
        return {
            "config_fingerprint": self.config.fingerprint(),
            "phase": self.phase,
            "epoch": self.epoch,
            "best_loss": self.best_loss,
            "bad_epochs": self.bad_epochs,
            "history": self.history,
            "student": self.student.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "pseudo_labels": {i: torch.from_numpy(np.packbits(_code_bits(c))) for i, c in self.pseudo_labels.items()},
            "labeler_rng": self.labeler.rng.bit_generator.state if self.labeler else None,
            # The encoder's stochastic depth draws from torch's generator: keep it so a
            # resumed run continues exactly as an uninterrupted one would.
            "torch_rng": torch.get_rng_state(),
        }

    def _restore(self, state: dict) -> None:
        self.phase, self.epoch = state["phase"], state["epoch"]
        self.best_loss, self.bad_epochs = state["best_loss"], state["bad_epochs"]
        self.history = state["history"]
        self.student.load_state_dict(state["student"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        size = self.config.size
        self.pseudo_labels = {int(i): unpack_code(bits.numpy(), size) for i, bits in state["pseudo_labels"].items()}
        if self.pseudo_labels:
            self._attach_pseudo_labels()
        if state.get("labeler_rng") is not None:
            self._labeler().rng.bit_generator.state = state["labeler_rng"]
        torch.set_rng_state(state["torch_rng"])  # last: building the teacher draws from it

    def _try_resume(self) -> bool:
        last = self.out_dir / "last.pt"
        if not last.exists():
            return False
        state = load_torch(last)
        if state.get("config_fingerprint") != self.config.fingerprint():
            raise ValueError(
                f"{self.out_dir} holds a run with different settings; choose another output folder "
                "or delete it to start afresh"
            )
        self._restore(state)
        log.info("resuming %s: phase %s after epoch %d", self.out_dir, self.phase, self.epoch)
        return True

    # ----- the run --------------------------------------------------------------------
    def fit(self) -> TrainResult:
        resumed = self._try_resume()
        if not resumed and self.init_checkpoint and self.config.schedule != "supervised":
            self._start_mining_from(self.init_checkpoint)
        if self.phase == "supervised":
            self._run_phase("supervised")
            if self.config.schedule == "supervised":
                return self._result()
            self._start_mining_from(self.out_dir / "best_supervised.pt")
        if self.phase == "mining":
            self._run_phase("mining")
        return self._result()

    def _start_mining_from(self, checkpoint: Path) -> None:
        saved = read_student_checkpoint(checkpoint)
        self.student.load_state_dict(saved["state_dict"])
        self.history = [r for r in saved["extra"].get("history", []) if r["phase"] == "supervised"]
        self.phase, self.epoch, self.best_loss, self.bad_epochs = "mining", 0, float("inf"), 0
        self._new_optimizer()
        if self.config.second_phase == "continue":
            self._continue_optimizer(saved["extra"].get("optimizer_state"), checkpoint)
        if self.config.schedule == "one-time" and not self.data.unlabelled_empty:
            self._make_one_time_pseudo_labels()
        save_torch(self._state(), self.out_dir / "last.pt")

    def _continue_optimizer(self, state: dict | None, checkpoint: Path) -> None:
        """The supervised phase's Adam moments and learning rate at its best epoch, instead of a
        fresh Adam whose first steps are as large as the initial rate allows (BENCHMARKS.md
        measures the second phase's first-epoch fall both ways)."""
        if state is None:
            log.warning("%s holds no optimizer state (written before it kept one): the second phase "
                        "starts with a fresh optimizer", checkpoint)
            return
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])

    def _run_phase(self, phase: str) -> None:
        self.callbacks.on_phase_start(phase, self)
        while self.epoch < self.config.epoch_cap(phase) and self.bad_epochs < self.config.early_stop:
            if self.callbacks.should_stop():
                raise TrainingCancelled(f"stopped by request after {phase} epoch {self.epoch}")
            record = self._epoch(phase, self.epoch)
            self.epoch += 1
            self.history.append(record)
            self._append_history(record)
            save_torch(self._state(), self.out_dir / "last.pt")
            self.callbacks.on_epoch_end(record)

    def _epoch(self, phase: str, epoch: int) -> dict:
        start = time.perf_counter()
        teacher_counts = self._teacher_counts()
        stats = PseudoStats()
        train = self._train_one_epoch(phase, epoch, stats)
        val_clock = time.perf_counter()
        val = self.validate()
        val["t_val"] = time.perf_counter() - val_clock
        self.scheduler.step(val["val_loss"])
        improved = val["val_loss"] < self.best_loss
        if improved:
            self.best_loss, self.bad_epochs = val["val_loss"], 0
        else:
            self.bad_epochs += 1
        record = {
            "phase": phase,
            "epoch": epoch,
            **train,
            **val,
            "lr": self.optimizer.param_groups[0]["lr"],
            "seconds": time.perf_counter() - start,
            **{k: v1 - v0 for (k, v1), v0 in zip(self._teacher_counts().items(), teacher_counts.values())},
            **(stats.summary() if phase == "mining" and self.config.schedule == "continuous" else {}),
            "best": improved,
        }
        if improved:
            self._save_best(phase, record)
        return record

    @property
    def _mines(self) -> bool:
        """True when the second phase trains on pseudo-labelled images too."""
        return self.config.schedule in MINING_SCHEDULES and not self.data.unlabelled_empty

    def _teacher_counts(self) -> dict:
        if self._teacher is None:
            return {"encode_calls": 0, "decode_calls": 0}
        return {"encode_calls": self._teacher.encode_calls, "decode_calls": self._teacher.decode_calls}

    def _train_loader(self, phase: str, epoch: int) -> DataLoader:
        sets = [self.data.labelled]
        if phase == "mining" and self._mines:
            sets.append(self.data.unlabelled)
        for s in sets:
            s.set_epoch(epoch)
        # Shuffling is seeded per (seed, phase, epoch) so a resumed run sees the same order.
        gen = torch.Generator().manual_seed(self.config.seed * 1_000_003 + epoch * 2 + (phase == "mining"))
        data: ConcatDataset = ConcatDataset(sets)
        if phase == "mining" and self.config.schedule == "extended":
            # The same-compute control: as many steps as a mining epoch over labelled ∪
            # unlabelled images would take, drawn from the labelled ones.
            steps = len(self.data.labelled) + len(self.data.unlabelled)
            sampler = RandomSampler(data, replacement=True, num_samples=steps, generator=gen)
            return DataLoader(data, batch_size=self.config.batch_size, sampler=sampler,
                              collate_fn=collate_segmentation)
        if phase == "mining" and self._mines and self.config.labelled_share is not None:
            batches = mixed_batches(len(self.data.labelled), len(self.data.unlabelled), self.config.batch_size,
                                    self.config.labelled_share, self.config.seed, epoch)
            return DataLoader(data, batch_sampler=batches, collate_fn=collate_segmentation)
        return DataLoader(data, batch_size=self.config.batch_size, shuffle=True, generator=gen,
                          collate_fn=collate_segmentation)

    def _train_one_epoch(self, phase: str, epoch: int, stats: PseudoStats) -> dict:
        self.student.train()
        losses, sups, pseudos = [], [], []
        seconds = {"data": 0.0, "student": 0.0}
        loader = self._train_loader(phase, epoch)
        # disable=None: a bar on a terminal only (tqdm's rule); a log file, or a job worker's stderr
        # (Celery logs it as WARNING lines), gets none: a job's progress is in its database row.
        bar = tqdm(loader, desc=f"{phase} epoch {epoch + 1}", leave=False, unit="batch", disable=None)
        clock = time.perf_counter()
        for step, batch in enumerate(bar):
            now = time.perf_counter()
            seconds["data"] += now - clock  # waiting for the loader
            clock = now
            # "pseudo" perturbs pseudo-labelled rows only: a labelled-only control keeps the weak path.
            strong = phase == "mining" and (self.config.perturb == "strong"
                                            or (self.config.perturb == "pseudo" and self._mines))
            logits: torch.Tensor | None = None if strong else self.student(batch["image"].to(self.device))
            pseudo_clock = time.perf_counter()
            codes, keep = self._pseudo_targets(phase, batch, logits, stats)
            targets, weights = split_code(codes.to(self.device), self.config.strategy.doubt_weight)
            pseudo_seconds = time.perf_counter() - pseudo_clock
            lab = batch["has_mask"]
            labels = batch["mask"][lab].to(self.device)
            if strong:
                logits, labels, targets, weights = self._strong_step(batch, lab, keep, labels, targets, weights,
                                                                     epoch, step)
            assert logits is not None  # the student has run on the batch, weak or strong
            loss, parts = mining_loss(
                logits[lab.to(self.device)], labels, logits[keep.to(self.device)], targets,
                self.config.k, self._lam(phase, epoch, step, len(loader)), pseudo_weights=weights,
            )
            if loss.requires_grad:  # else nothing to learn from: unlabelled images without pseudo-labels
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
            seconds["student"] += time.perf_counter() - clock - pseudo_seconds
            clock = time.perf_counter()
            losses.append(float(loss.detach()))
            sups.append(parts["sup"])
            pseudos.append(parts["pseudo"])
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
            self.callbacks.on_batch(phase, epoch, step + 1, len(loader))
        return {
            "train_loss": float(np.mean(losses)),
            "sup_loss": float(np.mean(sups)),
            "pseudo_loss": float(np.mean(pseudos)),
            **{f"t_{k}": v for k, v in seconds.items()},
        }

    def _lam(self, phase: str, epoch: int, step: int, steps: int) -> float:
        """λ at this step: ramped up linearly over ``lam_rampup`` epochs of the second phase."""
        ramp = self.config.lam_rampup
        if phase != "mining" or ramp <= 0:
            return self.config.lam
        return self.config.lam * min(1.0, (epoch + (step + 1) / max(1, steps)) / ramp)

    def _strong_step(self, batch: dict, lab: torch.Tensor, keep: torch.Tensor, labels: torch.Tensor,
                     targets: torch.Tensor, weights: torch.Tensor | None, epoch: int, step: int):
        """The student's logits on the strongly perturbed batch, and the targets moved with it
        (CutMix among the labelled rows, and among the pseudo-labelled rows, apart). With
        ``perturb: pseudo`` the labelled rows keep their weak view."""
        gen = step_generator(self.config.seed, epoch, step)
        weights = torch.ones_like(targets) if weights is None else weights
        if self.config.perturb == "strong":
            images = photometric(batch["image"], gen)
            images[lab], labels, _ = cutmix(images[lab], labels.cpu(), torch.ones_like(labels.cpu()), gen)
        else:
            images = batch["image"].to(torch.float32, copy=True)
            images[keep] = photometric(batch["image"][keep], gen)
        images[keep], targets, weights = cutmix(images[keep], targets.cpu(), weights.cpu(), gen)
        logits = self.student(images.to(self.device))
        return logits, labels.to(self.device), targets.to(self.device), weights.to(self.device)

    def _pseudo_targets(self, phase: str, batch: dict, logits: torch.Tensor | None, stats: PseudoStats):
        """Pseudo-label codes (P, 1, S, S) and the (B,) mask of the batch rows they belong to.
        ``logits``: the student's on this batch's (weak) view, when it has run already."""
        unl = ~batch["has_mask"]
        if phase != "mining" or not self._mines or not unl.any():
            return torch.zeros((0, 1, *batch["image"].shape[-2:])), torch.zeros(len(unl), dtype=torch.bool)
        if self.config.schedule == "one-time":
            keep = unl & batch["has_pseudo"]
            return batch["pseudo"][keep], keep
        return self._continuous_targets(batch, logits, unl, stats)

    def _continuous_targets(self, batch: dict, logits: torch.Tensor | None, unl: torch.Tensor, stats: PseudoStats):
        rows = torch.nonzero(unl).flatten().tolist()
        images = batch["image"][rows].permute(0, 2, 3, 1).numpy()
        ops = [DihedralOps(*batch["ops"][r].tolist()) for r in rows]
        # The teacher sees the canonical view, so each image is encoded once however it
        # was flipped or rotated this time; the mask is then put into this view.
        canon_images = [invert_dihedral(im, op) for im, op in zip(images, ops)]
        clock = time.perf_counter()
        if self.config.strategy.tta:
            canon_probs = list(self._tta_probs(np.stack(canon_images)))
            clock = stats.lap("tta", clock)
        else:
            if logits is None:  # the student trains on a strong view: prompts come from the weak one
                with torch.no_grad():
                    logits = self.student(batch["image"][rows].to(self.device))
                rows_logits = logits[:, 0]
            else:
                rows_logits = logits.detach()[rows, 0]
            probs = torch.sigmoid(rows_logits).float().cpu().numpy()
            canon_probs = [invert_dihedral(p, op) for p, op in zip(probs, ops)]
            clock = time.perf_counter()
        indices = [int(batch["index"][r]) for r in rows]
        teacher_images = self._teacher_images(indices)
        stats.lap("crops", clock)
        labels = self._labeler().make(
            canon_images, canon_probs, stats, [self.data.truth.get(i) for i in indices], teacher_images
        )
        keep = torch.zeros(len(unl), dtype=torch.bool)
        targets = []
        for r, index, op, label in zip(rows, indices, ops, labels):
            if label is not None:
                self.pseudo_labels[index] = label  # the latest, kept in last.pt for the server to store
                keep[r] = True
                targets.append(torch.from_numpy(np.ascontiguousarray(apply_dihedral(label, op))).float()[None])
        return (torch.stack(targets) if targets else torch.zeros((0, 1, *batch["image"].shape[-2:]))), keep

    def _make_one_time_pseudo_labels(self) -> None:
        """Pseudo-labels for every unlabelled image, once, from the converged student."""
        stats = PseudoStats()
        self.student.eval()
        images = self.data.unlabelled.images  # (N, S, S, 3) uint8, un-augmented
        step = self.config.batch_size
        with torch.inference_mode():
            for start in tqdm(range(0, len(images), step), desc="one-time pseudo-labels", leave=False, unit="batch",
                              disable=None):  # on a terminal only, as the epochs' bars
                chunk = images[start : start + step]
                clock = time.perf_counter()
                if self.config.strategy.tta:
                    probs = self._tta_probs(chunk)
                    clock = stats.lap("tta", clock)
                else:
                    x = torch.from_numpy(chunk).permute(0, 3, 1, 2).to(self.device)
                    probs = torch.sigmoid(self.student(x)[:, 0]).float().cpu().numpy()
                    clock = time.perf_counter()
                indices = list(range(start, start + len(chunk)))
                truths = [self.data.truth.get(i) for i in indices]
                teacher_images = self._teacher_images(indices)
                stats.lap("crops", clock)
                labels = self._labeler().make(list(chunk), list(probs), stats, truths, teacher_images)
                for i, label in zip(indices, labels):
                    if label is not None:
                        self.pseudo_labels[i] = label
        self._attach_pseudo_labels()
        summary = stats.summary()
        record = {"phase": "pseudo-labels", "encode_calls": self.teacher.encode_calls, **summary}
        self.history.append(record)
        self._append_history(record)
        log.info("one-time pseudo-labels: %s", summary)

    def _tta_probs(self, images: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 canonical images -> (N, S, S) mean probability over the strategy's views."""
        x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).to(self.device)
        return tta_probs(self.student, x, self.config.strategy.tta_views).cpu().numpy()

    def _teacher_images(self, indices: list[int]) -> list[np.ndarray] | None:
        """The unlabelled images at the strategy's ``teacher_size`` (None: the training crops)."""
        size = self.config.strategy.teacher_size
        if size is None or size == self.config.size:
            return None
        return [self.data.unlabelled.crop_at(i, size) for i in indices]

    def validate(self) -> dict:
        """Validation loss (Dice + k·BCE) and per-image Dice/IoU at threshold 0.5."""
        self.student.eval()
        losses, dices, ious = [], [], []
        loader = DataLoader(self.data.val, batch_size=self.config.batch_size, collate_fn=collate_segmentation)
        with torch.inference_mode():
            for batch in loader:
                logits = self.student(batch["image"].to(self.device))
                masks = batch["mask"].to(self.device)
                losses.extend(dice_bce_per_image(logits, masks, self.config.k).tolist())
                for pred, truth in zip((logits[:, 0] > 0).cpu().numpy(), masks[:, 0].cpu().numpy() > 0.5):
                    d, i = dice_iou(pred, truth)
                    dices.append(d)
                    ious.append(i)
        return {
            "val_loss": float(np.mean(losses)),
            "val_dice": mean_std(dices)[0],
            "val_iou": mean_std(ious)[0],
        }

    # ----- outputs --------------------------------------------------------------------
    def _attach_pseudo_labels(self) -> None:
        # Both sets carry pseudo fields (labelled ones empty) so their items batch together.
        self.data.unlabelled.pseudo_labels = self.pseudo_labels
        self.data.labelled.pseudo_labels = {}

    def _save_best(self, phase: str, record: dict) -> None:
        meta = {
            "config": self.config.to_dict(),
            "metrics": record,
            "split": self.data.split.to_dict(),
            "history": self.history + [record],
        }
        save_student(self.student, self.out_dir / "best.pt", meta)
        if phase == "supervised":
            # The optimizer at this epoch, for a second phase that continues it (not in best.pt:
            # the model a user downloads stays the weights alone).
            optimizer_state = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}
            save_student(self.student, self.out_dir / "best_supervised.pt", {**meta, "optimizer_state": optimizer_state})

    def _append_history(self, record: dict) -> None:
        with open(self.out_dir / "history.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

    def _result(self) -> TrainResult:
        final_phase = "mining" if self.config.schedule != "supervised" else "supervised"
        records = [r for r in self.history if r.get("phase") == final_phase and "val_loss" in r]
        best = min(records, key=lambda r: r["val_loss"]) if records else {}
        result = TrainResult(self.out_dir, self.out_dir / "best.pt", self.history, best)
        save_json({"best": best, "config": self.config.to_dict()}, self.out_dir / "result.json")
        self.callbacks.on_train_end(result)
        return result


def train(config: TrainConfig, out_dir: str | Path, callbacks: list[Callback] | None = None, **kwargs) -> TrainResult:
    """Train a student per ``config`` into ``out_dir`` (resuming if a run is there)."""
    return Trainer(config, out_dir, callbacks, **kwargs).fit()


def _code_bits(code: np.ndarray) -> np.ndarray:
    """A pseudo-label code (S, S) as two stacked bit planes (target, doubt) for packbits."""
    code = np.asarray(code).astype(np.uint8)
    return np.stack([code & 1, code >> 1 & 1]).astype(bool)


def unpack_code(bits: np.ndarray, size: int) -> np.ndarray:
    """Inverse of ``np.packbits(_code_bits(code))``: the (size, size) uint8 code."""
    planes = np.unpackbits(bits)[: 2 * size * size].reshape(2, size, size)
    return (planes[0] | planes[1] << 1).astype(np.uint8)
