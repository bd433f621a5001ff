"""Run folders: the run's config on disk, its metrics log, and restoring its generator.

A run folder `runs/NAME/` holds `config.json` (everything needed to rebuild the models and the
data stream), `checkpoints/` (the last few full training states), `best/` (the generator
weights with the lowest validation NLL), `metrics.jsonl` (one JSON object per logged step) and
`training.png`, and after `ganmusic calibrate` `calibration.json` (tilted output biases, see
`calibration`). `train.train_run` writes them; evaluation, sampling and notebooks read them here.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ganmusic import checkpoints
from ganmusic.configs import RunConfig, changed_fields
from ganmusic.encoding import Vocab
from ganmusic.errors import GanmusicError
from ganmusic.models import Generator

OLD_FORMATS = ("ganmusic-run/1",)
CALIBRATION = "calibration.json"
# Settings a resumed run may change; the step counts may grow within their phase (see `resumed`).
RESUMABLE = ("data", "eval_every", "checkpoint_every", "keep", "devices", "adv.sample_every")


class RunError(GanmusicError):
    """A run folder that cannot be used (missing, incompatible), with a one-line reason."""


class NoBestError(RunError):
    """`best/` holds nothing yet (stopped before the first validation) while `checkpoints/` does."""


def load_run_config(run_dir: str | Path) -> RunConfig:
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise RunError(f"{run_dir}: not a run folder (no config.json)")
    try:
        raw = json.loads(path.read_text())
        if isinstance(raw, dict) and raw.get("format") in OLD_FORMATS:
            raise RunError(f"{run_dir}: made by an older ganmusic ({raw['format']}, a different checkpoint "
                           "layout); retrain it")
        return check_vocab(RunConfig.from_dict(raw), path)
    except RunError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RunError(f"{path}: incompatible run config ({exc})") from None


def check_vocab(config: RunConfig, where: str | Path = "run config") -> RunConfig:
    """The generator's vocabulary must be the encoding's (configs.py cannot build a Vocab)."""
    gen, vocab = config.generator, Vocab(config.encoding)
    if gen.vocab_size != vocab.size:
        raise RunError(f"{where}: generator vocab_size {gen.vocab_size} does not match the encoding's {vocab.size}")
    if gen.chords and gen.steps_per_beat != config.encoding.steps_per_beat:
        raise RunError(f"{where}: the generator reads chords on a grid of {gen.steps_per_beat} steps "
                       f"per beat, the encoding has {config.encoding.steps_per_beat}")
    if gen.phase_scores not in (0, config.encoding.fine_beats):
        raise RunError(f"{where}: the generator's phase scores assume exact shifts up to {gen.phase_scores} beats, "
                       f"the encoding's go to {config.encoding.fine_beats}")
    if gen.pitch_tokens and (tuple(gen.pitch_tokens), gen.pitch_min) != ((vocab.pitch_start, len(vocab.pitches)),
                                                                         config.encoding.pitch_min):
        raise RunError(f"{where}: the generator's pitch tokens {gen.pitch_tokens} from pitch {gen.pitch_min} are not "
                       f"the encoding's ({vocab.pitch_start}, {len(vocab.pitches)}) from {config.encoding.pitch_min}")
    return config


def resumed(saved: RunConfig, requested: RunConfig | None, run_dir: str | Path | None = None) -> RunConfig:
    """The config a resumed run continues with: the saved one, with the settings that may change
    taken from `requested` (see `RESUMABLE`; more or fewer steps in the phase the run is in).
    Any other difference is a `RunError` naming the settings, never silently ignored."""
    if requested is None:
        return saved
    changed = changed_fields(saved, requested)
    steps_ok = ("adv.steps" if saved.adv.steps and requested.adv.steps else
                "mle_steps" if not saved.adv.steps and not requested.adv.steps else None)
    refused = [name for name in changed if name not in RESUMABLE and name != steps_ok]
    if refused:
        where = f"{run_dir}: " if run_dir else ""
        raise RunError(f"{where}cannot resume with different {', '.join(refused)} (saved: "
                       + ", ".join(f"{n}={field_value(saved, n)!r}" for n in refused)
                       + "); resume with the saved settings or start a new run")
    return requested


def field_value(config, path: str):
    """A (dotted) field of a config: `field_value(run_config, "adv.steps")`."""
    for part in path.split("."):
        config = getattr(config, part)
    return config


def saved_steps(run_dir: Path, folder: str = "checkpoints") -> list[int]:
    if not (run_dir / folder).is_dir():
        return []
    with checkpoints.Manager(run_dir / folder, read_only=True) as manager:
        return manager.steps()


def restore_params(run_dir: str | Path, which: str | int = "best", calibrated: bool = True):
    """`(config, generator params)` of a run: `best`, `last` or a step number; with the run's
    calibrated biases where `calibrated` and RUN/calibration.json was computed for these weights."""
    config, params = _restore(run_dir, which)
    return config, with_calibration(run_dir, params) if calibrated else params


def with_calibration(run_dir: str | Path, params):
    """`params` with the biases of RUN/calibration.json when it was computed for exactly these
    weights' biases (a checkpoint trained on from them is not calibrated)."""
    path = Path(run_dir) / CALIBRATION
    if not path.is_file():
        return params
    try:
        saved = json.loads(path.read_text())
        base, tilted = saved["base"], saved["calibrated"]
        for layer, bias in base.items():
            have = np.asarray(params[layer]["bias"])
            if have.shape != np.shape(bias) or not np.allclose(have, bias, rtol=0, atol=1e-6):
                return params
        return with_biases(params, tilted)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RunError(f"{path}: unreadable calibration ({type(exc).__name__}: {exc}); run `ganmusic calibrate` "
                       "again or delete it") from None


def with_biases(params, biases: dict):
    """`params` with the named layers' biases replaced (`{"pitch_head": values}`), the rest shared."""
    return {**params, **{layer: {**params[layer], "bias": jnp.asarray(b, jnp.float32)} for layer, b in biases.items()}}


def _restore(run_dir: str | Path, which: str | int):
    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    model = Generator(config.generator)
    template = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((1, 8), jnp.int32))["params"])
    which = str(which)
    try:
        if which == "best":
            try:
                return config, checkpoints.restore_latest(run_dir / "best", template)
            except checkpoints.CheckpointError:
                steps = saved_steps(run_dir)
                if not steps or saved_steps(run_dir, "best"):  # best/ is not empty: unreadable, not absent
                    raise
                raise NoBestError(f"{run_dir}: no best checkpoint yet (training stopped before its first "
                                  f"validation); the last one (step {steps[-1]}) can be used instead") from None
        with checkpoints.Manager(run_dir / "checkpoints", read_only=True) as manager:
            steps = manager.steps()
            step = steps[-1] if which == "last" and steps else int(which) if which.isdigit() else None
            if step is None or step not in steps:
                raise RunError(f"{run_dir}: no checkpoint '{which}' (have: {', '.join(map(str, steps)) or 'none'})")
            return config, manager.restore_part(step, "gen", template)  # every phase's state has "gen"
    except checkpoints.CheckpointError as exc:
        raise RunError(f"{run_dir}: {exc}") from None


class MetricsLog:
    """`metrics.jsonl`: on resume, lines past the restored step are dropped, so the log has
    neither gaps nor duplicates."""

    def __init__(self, path: Path, resume_step: int | None):
        self.path = path
        rows = self.read(path) if resume_step is not None else []
        rows = [r for r in rows if r["step"] <= (resume_step or 0)]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))

    @staticmethod
    def read(path: str | Path) -> list[dict]:
        path = Path(path)
        if not path.exists():
            return []
        rows = []
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut by a kill: drop it
                continue
        return rows

    def append(self, row: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
