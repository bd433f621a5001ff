"""Orbax checkpoints of parameter pytrees: atomic saves, restores against a template.

Orbax writes each step to a temporary folder and renames it when complete, so a crash never
leaves a half-written checkpoint that a later restore could pick up.

The saved trees are host NumPy arrays (the whole state, which every process holds), so a manager
belongs to one process: under `jax.distributed`, process 0 alone saves, and orbax's cross-process
barriers are limited to the process that uses the manager (`active_processes`), so no process
waits for a save that others never call.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import jax
import orbax.checkpoint as ocp

from ganmusic.errors import GanmusicError

logging.getLogger("absl").setLevel(logging.ERROR)  # orbax logs every save at INFO/WARNING


class CheckpointError(GanmusicError):
    """No usable checkpoint, with a one-line reason."""


class Manager:
    """A thin context manager around `ocp.CheckpointManager` for one pytree per step."""

    def __init__(self, directory: str | Path, max_to_keep: int | None = 3, read_only: bool = False):
        this_process = jax.process_index()
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=False, read_only=read_only, enable_async_checkpointing=False,
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

    def steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def discard_after(self, step: int) -> None:
        """Delete every step folder after `step`, complete or not: after a resume from `step`
        they belong to a future that was lost (a kill can leave a step folder half-committed)."""
        for path in self.directory.iterdir():
            number = path.name.split(".")[0]
            if number.isdigit() and int(number) > step:
                shutil.rmtree(path)
        self._manager.reload()

    def save(self, step: int, tree) -> None:
        self._manager.save(int(step), args=ocp.args.StandardSave(tree), force=True)
        self._manager.wait_until_finished()

    def restore(self, step: int, template):
        """Restore `step` with the structure, shapes and dtypes of `template` (arrays or
        `jax.ShapeDtypeStruct`s), onto this process's first device; a mismatch raises
        `CheckpointError`."""
        abstract = on_local_device(template)
        self._check_fits(step, abstract)
        return self._read(step, args=ocp.args.StandardRestore(abstract))

    def restore_part(self, step: int, key: str, template):
        """One top-level entry of a saved dict, checked against `template` (no need to know
        the rest of the state's structure)."""
        self._check_fits(step, template, prefix=key)
        try:
            stored = self._manager.item_metadata(int(step))
        except Exception as exc:
            raise CheckpointError(f"checkpoint step {step} in {self.directory} has no readable metadata ({type(exc).__name__})") from None
        return self._read(step, args=ocp.args.StandardRestore(on_local_device(stored)))[key]

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
            raise CheckpointError(f"no complete checkpoint in {directory}")
        return manager.restore(step, template)
