"""Orbax checkpoints of parameter pytrees: atomic saves, verified restores against a template.

Orbax writes each step to a temporary folder and renames it when complete. Then the SHA-256 of
every file of the step is written, atomically, to `integrity.json` inside it: a step counts as
complete only once that record exists, so a crash never leaves a checkpoint that a later restore
could pick up half-written. On load the record is checked before orbax reads a byte, and restored
arrays must be finite: a damaged checkpoint is refused with one line naming its folder.

The saved trees are host NumPy arrays (the whole state, which every process holds), so a manager
belongs to one process: under `jax.distributed`, process 0 alone saves, and orbax's cross-process
barriers are limited to the process that uses the manager (`active_processes`), so no process
waits for a save that others never call.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp

from ganmusic.errors import GanmusicError

# Orbax logs every save at INFO/WARNING, and at ERROR what this module reports itself (one line,
# naming the folder) after checking each step's integrity record.
logging.getLogger("absl").setLevel(logging.CRITICAL)


class CheckpointError(GanmusicError):
    """No usable checkpoint, with a one-line reason."""


INTEGRITY = "integrity.json"
INTEGRITY_FORMAT = "ganmusic-checkpoint-integrity/1"


def file_hashes(step_dir: Path) -> dict[str, str]:
    """SHA-256 of every file under a step folder (but the integrity record), by relative path."""
    out = {}
    for path in sorted(step_dir.rglob("*")):
        if path.is_file() and path.name != INTEGRITY:
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            out[path.relative_to(step_dir).as_posix()] = h.hexdigest()
    return out


def write_integrity(step_dir: Path) -> None:
    """Record the content hash of a committed step; written to a temporary name and renamed,
    so the record is either absent (the step is incomplete) or whole."""
    record = {"format": INTEGRITY_FORMAT, "sha256": file_hashes(step_dir)}
    tmp = step_dir / f".{INTEGRITY}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(record, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, step_dir / INTEGRITY)


def verify_integrity(step_dir: Path) -> None:
    """Raise `CheckpointError` unless every file of the step matches its recorded hash."""
    where = f"checkpoint {step_dir}"
    try:
        record = json.loads((step_dir / INTEGRITY).read_text())
        expected = record["sha256"]
        if record.get("format") != INTEGRITY_FORMAT or not isinstance(expected, dict):
            raise ValueError
    except FileNotFoundError:
        raise CheckpointError(f"{where} is incomplete (no {INTEGRITY}: the save never finished)") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise CheckpointError(f"{where} is damaged ({INTEGRITY} is unreadable)") from None
    actual = file_hashes(step_dir)
    for name in sorted(set(expected) | set(actual)):
        if name not in actual:
            raise CheckpointError(f"{where} is damaged ({name} is missing)")
        if name not in expected:
            raise CheckpointError(f"{where} is damaged ({name} is not part of the saved checkpoint)")
        if actual[name] != expected[name]:
            raise CheckpointError(f"{where} is damaged ({name} does not match its content hash)")


def check_finite(tree, where: str) -> None:
    """Refuse restored arrays holding NaN or Inf: a checkpoint is only ever saved finite."""
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        value = np.asarray(leaf)
        if np.issubdtype(value.dtype, np.inexact) and not np.isfinite(value).all():
            raise CheckpointError(f"{where} is damaged ({leaf_name(path)} holds non-finite values)")


class Manager:
    """A thin context manager around `ocp.CheckpointManager` for one pytree per step."""

    def __init__(self, directory: str | Path, max_to_keep: int | None = 3, read_only: bool = False):
        # Orbax keeps every step; old ones are deleted here, once a newer one is complete.
        self.max_to_keep = max_to_keep
        this_process = jax.process_index()
        options = ocp.CheckpointManagerOptions(
            max_to_keep=None, create=False, read_only=read_only, enable_async_checkpointing=False,
            cleanup_tmp_directories=not read_only,
            multiprocessing_options=ocp.options.MultiprocessingOptions(primary_host=this_process,
                                                                       active_processes={this_process}))
        self.directory = Path(directory).resolve()
        if not read_only:  # orbax does not create it for a one-process manager
            self.directory.mkdir(parents=True, exist_ok=True)
        self._manager = ocp.CheckpointManager(self.directory, options=options,
                                              item_handlers=ocp.StandardCheckpointHandler())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._manager.wait_until_finished()
        self._manager.close()

    def step_dir(self, step: int) -> Path:
        return self.directory / str(int(step))

    def steps(self) -> list[int]:
        """Complete steps: committed by orbax and with their integrity record."""
        return sorted(s for s in self._manager.all_steps() if (self.step_dir(s) / INTEGRITY).is_file())

    def latest_step(self) -> int | None:
        steps = self.steps()
        return steps[-1] if steps else None

    def discard_after(self, step: int) -> None:
        """Delete every step folder after `step`, complete or not: after a resume from `step`
        they belong to a future that was lost (a kill can leave a step folder half-committed)."""
        for path in self.directory.iterdir():
            number = path.name.split(".")[0]
            if number.isdigit() and int(number) > step:
                shutil.rmtree(path)
        self._manager.reload()

    def save(self, step: int, tree) -> None:
        step = int(step)
        if step in self._manager.all_steps():  # an incomplete leftover of an interrupted save
            shutil.rmtree(self.step_dir(step))
            self._manager.reload()
        self._manager.save(step, args=ocp.args.StandardSave(tree), force=True)
        self._manager.wait_until_finished()
        write_integrity(self.step_dir(step))
        complete = self.steps()
        stale = [s for s in self._manager.all_steps() if s < step and s not in complete]  # killed saves
        if self.max_to_keep is not None:
            stale += complete[: -self.max_to_keep]
        for old in stale:
            shutil.rmtree(self.step_dir(old), ignore_errors=True)
        self._manager.reload()

    def restore(self, step: int, template):
        """Restore `step` with the structure, shapes and dtypes of `template` (arrays or
        `jax.ShapeDtypeStruct`s), onto this process's first device; a mismatch raises
        `CheckpointError`."""
        abstract = on_local_device(template)
        self._verify(step)
        self._check_fits(step, abstract)
        tree = self._read(step, args=ocp.args.StandardRestore(abstract))
        check_finite(tree, f"checkpoint {self.step_dir(step)}")
        return tree

    def restore_part(self, step: int, key: str, template):
        """One top-level entry of a saved dict, checked against `template` (no need to know
        the rest of the state's structure)."""
        self._verify(step)
        self._check_fits(step, template, prefix=key)
        try:
            stored = self._manager.item_metadata(int(step))
        except Exception as exc:
            raise CheckpointError(f"checkpoint step {step} in {self.directory} has no readable metadata ({type(exc).__name__})") from None
        tree = self._read(step, args=ocp.args.StandardRestore(on_local_device(stored)))[key]
        check_finite(tree, f"checkpoint {self.step_dir(step)}")
        return tree

    def _verify(self, step: int) -> None:
        if int(step) not in self._manager.all_steps():
            raise CheckpointError(f"no checkpoint step {step} in {self.directory}")
        verify_integrity(self.step_dir(step))

    def _read(self, step: int, args=None):
        try:
            return self._manager.restore(int(step), args=args)
        except Exception as exc:  # orbax raises several kinds on unreadable data
            msg = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise CheckpointError(f"checkpoint step {step} in {self.directory} cannot be read ({msg})") from None

    def _check_fits(self, step: int, abstract, prefix: str | None = None) -> None:
        """Compare names and shapes with the stored metadata before restoring: a failed orbax
        restore leaves background threads that print tracebacks at exit."""
        try:
            stored = self._manager.item_metadata(int(step))
            if prefix is not None:
                stored = stored[prefix]
            have = {leaf_name(k): tuple(v.shape) for k, v in jax.tree_util.tree_leaves_with_path(stored)}
        except Exception as exc:
            raise CheckpointError(f"checkpoint step {step} in {self.directory} has no readable metadata ({type(exc).__name__})") from None
        want = {leaf_name(k): tuple(v.shape) for k, v in jax.tree_util.tree_leaves_with_path(abstract)}
        if have != want:
            diff = sorted(set(have.items()) ^ set(want.items()))[0][0]
            detail = (f"{diff}: stored {have.get(diff, 'missing')}, model needs {want.get(diff, 'nothing')}")
            raise CheckpointError(f"checkpoint step {step} in {self.directory} does not fit this model ({detail})")


def on_local_device(tree):
    """Shape-and-dtype leaves placed on this process's first device. Without a placement orbax
    would reuse the one saved in the checkpoint, which names devices of the process that wrote
    it (under `jax.distributed`, another process's devices)."""
    sharding = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree)


def leaf_name(path) -> str:
    """'opt_state/1/0/count' for a key path: orbax stores named tuples as dicts, so attribute,
    dict and sequence keys are all written the same way."""
    parts = []
    for key in path:
        for attr in ("key", "name", "idx"):
            if hasattr(key, attr):
                parts.append(str(getattr(key, attr)))
                break
    return "/".join(parts)


def restore_latest(directory: str | Path, template):
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"no checkpoint folder at {directory}")
    with Manager(directory, read_only=True) as manager:
        step = manager.latest_step()
        if step is None:
            partial = manager._manager.all_steps()
            reason = (f" (step {max(partial)} has no {INTEGRITY}: its save never finished, or an older ganmusic "
                      "wrote it; train again)") if partial else ""
            raise CheckpointError(f"no complete checkpoint in {directory}{reason}")
        return manager.restore(step, template)
