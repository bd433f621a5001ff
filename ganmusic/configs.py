"""Every config dataclass, its JSON round-trip, its defaults and its range checks.

A config is a frozen dataclass: its field defaults and its `__post_init__` checks are the only
source of defaults and valid ranges. The CLI reads its option defaults from here (`default`),
the library refuses a bad value with a `ConfigError`, and `config_from_dict` (used by every
`from_dict`) refuses unknown keys. This module imports nothing heavy, so `ganmusic --help`
stays fast; the modules that use a config import it from here.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from ganmusic import jsontypes
from ganmusic.errors import ConfigError
from ganmusic.jsontypes import finite

RUN_FORMAT = "ganmusic-run/2"  # version 2: every checkpointed state names the generator weights "gen"
OPTIMIZERS = ("adam", "adamw", "rmsprop")
MAX_SEED = 2**32 - 1  # what every seed consumer (JAX keys, NumPy generators) takes
MAX_WIDTH = 8192  # embedding and hidden sizes: far above what trains on one accelerator
MAX_LAYERS, MAX_WINDOW = 64, 65536  # layers of a model; tokens per training window


def config_from_dict(cls, d: dict, what: str):
    """A config from its JSON form, checked by `jsontypes.problem` first; lists become tuples."""
    problem = jsontypes.problem(cls, d, what)
    if problem:
        raise ConfigError(problem)
    return cls(**{k: jsontypes.to_tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def check_seed(seed, what: str = "seed") -> None:
    check(isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed <= MAX_SEED,
          f"{what} {seed} is out of range (an integer from 0 to {MAX_SEED})")


def default(cls, path: str):
    """The default of a config field, `"window"` or nested, `"adv.steps"` (none: `KeyError`)."""
    head, _, rest = path.partition(".")
    field = {f.name: f for f in dataclasses.fields(cls)}[head]
    if field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    else:
        raise KeyError(f"{cls.__name__}.{head} has no default")
    return getattr(value, rest) if rest else value


def check(ok: bool, message: str) -> None:
    """A range check in a config's `__post_init__`."""
    if not ok:
        raise ConfigError(message)


def changed_fields(a, b, prefix: str = "") -> list[str]:
    """Dotted names of the fields where two configs of one type differ, nested ones field by field."""
    out = []
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if dataclasses.is_dataclass(x) and type(x) is type(y):
            out += changed_fields(x, y, f"{prefix}{f.name}.")
        elif x != y:
            out.append(prefix + f.name)
    return out


def replace(config, changes: dict):
    """`config` with dotted fields (`{"adv.steps": 500}`) replaced."""
    nested, flat = {}, {}
    for path, value in changes.items():
        head, _, rest = path.partition(".")
        nested.setdefault(head, {}).update({rest: value}) if rest else flat.update({head: value})
    for head, sub in nested.items():
        flat[head] = replace(getattr(config, head), sub)
    return dataclasses.replace(config, **flat)


# --- Encoding (encoding.py) -------------------------------------------------------------------

@dataclass(frozen=True)
class EncodingConfig:
    """Everything that defines the vocabulary; saved as JSON with every model."""

    steps_per_beat: int = 12  # holds sixteenths and eighth-note triplets
    pitch_min: int = 21  # the piano's range by default
    pitch_max: int = 108
    fine_beats: int = 2  # shifts and durations up to this many beats are exact on the grid
    coarse_shift_beats: tuple[int, ...] = (3, 4, 5, 6, 7, 8, 12, 16)  # longer rests: buckets
    coarse_dur_beats: tuple[int, ...] = (3, 4, 6, 8)  # longer notes: buckets
    melody: bool = False  # skyline: only the highest note at each onset

    def __post_init__(self):
        check(1 <= self.steps_per_beat <= 96, f"steps_per_beat must be in [1, 96], got {self.steps_per_beat}")
        check(0 <= self.pitch_min <= self.pitch_max <= 127, "need 0 <= pitch_min <= pitch_max <= 127")
        check(1 <= self.fine_beats <= 16, "fine_beats must be in [1, 16]")
        check(isinstance(self.melody, bool), f"melody must be true or false, got {self.melody!r}")
        for name in ("coarse_shift_beats", "coarse_dur_beats"):
            beats = tuple(int(b) for b in getattr(self, name))
            if list(beats) != sorted(set(beats)) or (beats and beats[0] <= self.fine_beats) or len(beats) > 64 \
                    or (beats and beats[-1] > 1024):
                raise ConfigError(f"{name} must be increasing, above fine_beats and at most 1024 beats")
            object.__setattr__(self, name, beats)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "EncodingConfig":
        return config_from_dict(cls, d, "encoding")

    @classmethod
    def from_json(cls, text: str) -> "EncodingConfig":
        return cls.from_dict(json.loads(text))


# --- Models (models.py) -----------------------------------------------------------------------

ENCODERS = ("conv", "gru")


def check_sizes(config, names: tuple[str, ...]) -> None:
    """Checks shared by the model configs: the named sizes are >= 1, dropout is in [0, 1)."""
    for name in names:
        value = getattr(config, name)
        limit = MAX_LAYERS if name == "layers" else 1_000_000 if name == "vocab_size" else MAX_WIDTH
        check(type(value) is int and 1 <= value <= limit, f"{name} must be an integer in [1, {limit}], got {value!r}")
    check(finite(config.dropout) and 0.0 <= config.dropout < 1.0, f"dropout must be in [0, 1), got {config.dropout!r}")
    check(config.chords in (True, False, None), f"chords must be true or false, got {config.chords!r}")
    check(type(config.steps_per_beat) is int and 1 <= config.steps_per_beat <= 96, "steps_per_beat must be in [1, 96]")


@dataclass(frozen=True)
class ClassifierConfig:
    """Classifier architecture; saved as JSON with every classifier."""

    vocab_size: int
    embed_dim: int = 64
    encoder: str = "conv"  # "conv" (dilated residual CNN) or "gru" (bidirectional GRU)
    hidden: int = 64  # what `ganmusic train-classifier` has always trained with
    layers: int = 4  # conv: blocks with dilations 1, 2, 4, ...; gru: bidirectional layers
    kernel_size: int = 3
    dropout: float = 0.1
    # (first PITCH token id, number of pitches): embed pitches by interval, blind to key.
    pitch_tokens: tuple[int, int] | None = None
    max_interval: int = 24  # intervals up to two octaves get their own embedding
    # Token id ranges [lo, hi) each embedded as one token: with the SHIFT and DUR ranges the
    # model cannot see rhythm at all, only pitches (see `for_vocab(timing=False)`).
    merged_tokens: tuple[tuple[int, int], ...] = ()
    # Chords: the critic reads every token's chord conditioning relative to the chord (`train-classifier
    # --chords`), on the encoding's grid and lowest pitch.
    chords: bool = False
    steps_per_beat: int = 12
    pitch_min: int = 21

    @classmethod
    def for_vocab(cls, vocab, timing: bool = True, **kwargs) -> "ClassifierConfig":
        """A key-invariant config for an `encoding.Vocab`; `timing=False` also makes it blind
        to rhythm, for corpora whose timing differs for reasons other than style (performed
        against quantized files, say)."""
        merged = () if timing else ((vocab.shift_start, vocab.pitch_start), (vocab.dur_start, vocab.size))
        return cls(vocab_size=vocab.size, pitch_tokens=(vocab.pitch_start, len(vocab.pitches)), merged_tokens=merged,
                   steps_per_beat=vocab.config.steps_per_beat, pitch_min=vocab.config.pitch_min, **kwargs)

    def __post_init__(self):
        check(self.encoder in ENCODERS, f"encoder must be one of {ENCODERS}, got {self.encoder!r}")
        check_sizes(self, ("vocab_size", "embed_dim", "hidden", "layers", "kernel_size"))
        merged = tuple((int(lo), int(hi)) for lo, hi in self.merged_tokens)  # JSON gives lists
        check(all(0 <= lo < hi <= self.vocab_size for lo, hi in merged),
              f"merged_tokens must be ranges inside the vocabulary, got {merged}")
        object.__setattr__(self, "merged_tokens", merged)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ClassifierConfig":
        return config_from_dict(cls, d, "classifier")


CELLS = ("lstm", "gru")


@dataclass(frozen=True)
class GeneratorConfig:
    """Generator architecture; saved as JSON with every generator."""

    vocab_size: int
    layers: tuple[int, ...] = (256, 256)  # hidden size of each recurrent layer, bottom first
    cell: str = "lstm"  # "lstm" or "gru"
    embed_dim: int = 128
    dropout: float = 0.0  # on each recurrent layer's output, only with train=True
    # Chords: read every token's chord conditioning (lead_sheets.chord_features on a grid of `steps_per_beat`).
    # None: `train.train_run` decides (chords in the corpus: yes) and saves it; older configs read as False.
    chords: bool | None = False
    steps_per_beat: int = 12
    # (first PITCH token id, count), as the classifier's: pitches also scored by interval (pitch_scores); None: not
    pitch_tokens: tuple[int, int] | None = None
    pitch_min: int = 21
    pitch_memory: int = 0  # pitches also scored by how often their class was among this many recent ones
    pitch_register: bool = False  # and by where they lie against the range of recent pitches:
    register_span: int = 0  # this many (0: the last pitch_memory); and by the motifs they continue among
    motif_span: int = 0  # this many recent pitches (0: not)
    phase_scores: int = 0  # with chords, the encoding's fine_beats: SHIFT and DUR scored by the beat phase they reach

    @classmethod
    def for_vocab(cls, vocab, **kwargs) -> "GeneratorConfig":
        """A generator for an `encoding.Vocab`: its size, grid, pitch tokens and scores (`pitch_scores`)."""
        phase = vocab.config.fine_beats if kwargs.get("chords") is not False else 0
        # Register over 32: over 16 the default's 128 notes spanned 29 semitones, the solos' 25.5 (README).
        scores = {"pitch_memory": 16, "pitch_register": True, "register_span": 32, "motif_span": 32, "phase_scores": phase}
        return cls(vocab_size=vocab.size, steps_per_beat=vocab.config.steps_per_beat, **{**scores, **kwargs},
                   pitch_tokens=(vocab.pitch_start, len(vocab.pitches)), pitch_min=vocab.config.pitch_min)

    def __post_init__(self):
        check(self.cell in CELLS, f"cell must be one of {CELLS}, got {self.cell!r}")
        check(not isinstance(self.layers, int) and bool(self.layers), "layers must be a non-empty sequence of hidden sizes")
        layers = tuple(self.layers)
        check(len(layers) <= MAX_LAYERS and all(type(h) is int and 1 <= h <= MAX_WIDTH for h in layers),
              f"layers must be 1 to {MAX_LAYERS} sizes, each an integer in [1, {MAX_WIDTH}], got {self.layers!r:.60}")
        object.__setattr__(self, "layers", layers)
        check_sizes(self, ("vocab_size", "embed_dim"))
        check(self.pitch_tokens is None or (len(self.pitch_tokens) == 2 and 0 < self.pitch_tokens[1] and 0 <= self.pitch_tokens[0]
              <= self.vocab_size - self.pitch_tokens[1]), f"pitch_tokens must lie inside the vocabulary, got {self.pitch_tokens}")
        check(0 <= self.pitch_memory <= 64 and 0 <= self.register_span <= 64 and 0 <= self.phase_scores <= 16
              and (self.motif_span == 0 or 8 <= self.motif_span <= 64)
              and bool(self.pitch_tokens or not (self.pitch_memory or self.phase_scores or self.motif_span))
              and bool(self.pitch_memory or not self.pitch_register) and bool(self.pitch_register or not self.register_span),
              "pitch_memory and register_span 0 to 64, motif_span 0 or 8 to 64 and phase_scores 0 to 16 need pitch_tokens, pitch_register needs "
              "pitch_memory, register_span needs pitch_register")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "GeneratorConfig":
        return config_from_dict(cls, d, "generator")


# --- Sampling (sampling.py) -------------------------------------------------------------------

@dataclass(frozen=True)
class SamplingConfig:
    temperature: float = 1.0
    top_k: int = 0  # keep the k most likely legal tokens; 0 = off
    top_p: float = 1.0  # nucleus: the smallest set of legal tokens holding this much mass
    argmax_mix: float = 0.0  # per step and sequence, the chance of taking the argmax instead
    repetition_penalty: float = 1.0  # divides the probability of repeating the last pitch
    allow_eos: bool = False  # False: EOS is masked, so samples run their full length

    def __post_init__(self):
        check(finite(self.temperature) and self.temperature > 0, f"temperature must be finite and > 0, got {self.temperature}")
        check(self.top_k >= 0, "top_k must be >= 0 (0 = off)")
        check(finite(self.top_p) and 0.0 < self.top_p <= 1.0, f"top_p must be in (0, 1], got {self.top_p}")
        check(finite(self.argmax_mix) and 0.0 <= self.argmax_mix <= 1.0, f"argmax_mix must be in [0, 1], got {self.argmax_mix}")
        check(finite(self.repetition_penalty) and self.repetition_penalty > 0,
              f"repetition_penalty must be finite and > 0 (1 = off), got {self.repetition_penalty}")


# --- Classifier training (classify.py) --------------------------------------------------------

@dataclass(frozen=True)
class TrainConfig:
    window: int = 64  # window length in tokens (3 per note)
    steps: int = 1500
    batch_size: int = 64
    lr: float = 2e-3  # peak learning rate (warm-up, then cosine decay)
    weight_decay: float = 1e-4
    warmup: int = 100
    transpose: int = 6  # augmentation range in semitones (the model is key-invariant anyway)
    eval_every: int | None = None  # None: every tenth of the steps, at most every 100
    seed: int = 0

    def __post_init__(self):
        check(16 <= self.window <= 1024, f"window must be in [16, 1024] tokens, got {self.window}")
        check(self.steps >= 1, "steps must be >= 1")
        check(self.batch_size >= 2, "batch_size must be >= 2")
        check(finite(self.lr) and self.lr > 0, f"lr (the learning rate) must be a finite number > 0, got {self.lr}")
        check(finite(self.weight_decay) and self.weight_decay >= 0 and self.warmup >= 0,
              "weight_decay and warmup must be >= 0")
        check_seed(self.seed)
        check(0 <= self.transpose <= 24, "transpose must be in [0, 24] semitones")
        if self.eval_every is None:
            object.__setattr__(self, "eval_every", max(1, min(100, self.steps // 10)))
        check(self.eval_every >= 1, "eval_every must be >= 1")


# --- The adversarial phase (gan.py) -----------------------------------------------------------

ESTIMATORS = ("gumbel", "reinforce")


@dataclass(frozen=True)
class AdvConfig:
    steps: int = 0  # adversarial steps after the MLE phase (0: plain MLE)
    estimator: str = "gumbel"
    classifier: str | None = None  # the pretrained classifier the discriminator starts from
    lambda_mle: float = 1.0
    lambda_adv: float = 0.3
    lambda_rep: float = 0.0  # the generator's interval scores already match the real repeat rate (changes_compare)
    lambda_fm: float = 0.0  # feature matching: the critic's mean features, generated against real
    lr: float = 1e-4  # generator learning rate in this phase
    d_lr: float = 1e-3  # at 1e-4 the critic never learned real from generated in 200 steps (changes_compare)
    d_steps: int = 1  # discriminator updates per generator update
    label_smoothing: float = 0.1  # real windows get label 1 - this
    not_jazz_share: float = 0.0  # of D's negatives, other-label windows (>0 taught a jazz-vs-folk caricature)
    tau_start: float = 1.0  # Gumbel-softmax temperature, annealed geometrically
    tau_end: float = 0.3
    entropy: float = 0.01  # REINFORCE entropy bonus
    baseline_decay: float = 0.9  # REINFORCE moving-average baseline
    sample_every: int = 200  # write a few samples to runs/NAME/samples/STEP/
    # Samples this many critic windows long, cut on note boundaries: every part of a sample is judged.
    windows: int = 3

    def __post_init__(self):
        check(self.estimator in ESTIMATORS, f"estimator must be one of {ESTIMATORS}, got {self.estimator!r}")
        check(self.steps >= 0, "adversarial steps must be >= 0")
        check(not self.steps or bool(self.classifier),
              "the adversarial phase needs a pretrained classifier folder (classifiers/NAME) to start from")
        check(0.0 <= self.not_jazz_share <= 1.0, "not_jazz_share must be in [0, 1]")
        check(0.0 <= self.label_smoothing <= 0.5, "label_smoothing must be in [0, 0.5]")
        check(self.d_steps >= 1, "d_steps must be >= 1")
        check(self.windows >= 1, "windows must be >= 1")
        check(self.sample_every >= 0, "sample_every must be >= 0 (0: never)")
        for name in ("lr", "d_lr", "tau_start", "tau_end", "lambda_mle", "lambda_adv", "lambda_rep", "lambda_fm", "entropy"):
            value, low = getattr(self, name), "> 0" if name in ("lr", "d_lr", "tau_start", "tau_end") else ">= 0"
            check(finite(value) and (value > 0 if low == "> 0" else value >= 0),
                  f"adversarial {name} must be a finite number {low}, got {value}")
        check(finite(self.baseline_decay) and 0 <= self.baseline_decay < 1, "baseline_decay must be in [0, 1)")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "AdvConfig":
        return config_from_dict(cls, d, "adversarial")

    def tau(self, step):
        """Gumbel temperature at adversarial step `step` (0-based), from tau_start to tau_end."""
        import jax.numpy as jnp

        frac = jnp.clip(step / max(self.steps - 1, 1), 0.0, 1.0)
        return self.tau_start * (self.tau_end / self.tau_start) ** frac


# --- A generator run (runs.py, train.py) ------------------------------------------------------

@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs besides the data files; saved as `config.json`."""

    data: str
    generator: GeneratorConfig
    encoding: EncodingConfig = EncodingConfig()
    positive: str = "jazz"
    window: int = 256  # training window in tokens (3 per note)
    batch_size: int = 64
    mle_steps: int = 2000  # maximum-likelihood (teacher forcing) steps
    lr: float = 2e-3
    optimizer: str = "adam"  # adam, adamw or rmsprop
    clip: float = 1.0  # gradient clipping by global norm (0: off)
    weight_decay: float | None = None  # adamw only; None: 1e-4 with adamw, else 0 (what is saved is what ran)
    transpose: int = 6  # augmentation range in semitones
    eval_every: int = 100
    checkpoint_every: int = 250
    keep: int = 3  # last checkpoints kept, besides the best
    seed: int = 0
    init_from: str | None = None
    adv: AdvConfig = AdvConfig()  # the adversarial phase that follows the MLE steps
    devices: int = 0  # local devices to pmap over (0: all)
    allow_outside: bool = False  # manifest paths may leave the corpus folder

    def __post_init__(self):
        check(self.optimizer in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.weight_decay is None:
            object.__setattr__(self, "weight_decay", 1e-4 if self.optimizer == "adamw" else 0.0)
        check(self.weight_decay >= 0, "weight_decay must be >= 0")
        check(self.weight_decay == 0 or self.optimizer == "adamw", "weight_decay needs optimizer adamw")
        check(self.mle_steps >= 0 and self.mle_steps + self.adv.steps >= 1, "need at least one MLE or adversarial step")
        check(8 <= self.window <= MAX_WINDOW, f"window must be in [8, {MAX_WINDOW}] tokens, got {self.window}")
        check(1 <= self.batch_size <= 65536, f"batch_size must be in [1, 65536], got {self.batch_size}")
        check(finite(self.lr) and self.lr > 0, f"lr (the learning rate) must be a finite number > 0, got {self.lr}")
        check(finite(self.clip) and self.clip >= 0, "clip must be a finite number >= 0 (0: off)")
        check(bool(self.positive.strip()), "positive (the label to learn) must not be empty")
        check_seed(self.seed)
        check(0 <= self.transpose <= 24, "transpose must be in [0, 24] semitones")
        check(min(self.eval_every, self.checkpoint_every, self.keep) >= 1,
              "eval_every, checkpoint_every and keep must be >= 1")
        check(self.devices >= 0, "devices must be >= 0 (0: all)")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["generator"] = self.generator.to_dict()
        d["encoding"] = dataclasses.asdict(self.encoding)
        d["adv"] = self.adv.to_dict()
        return {"format": RUN_FORMAT, **d}

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        d = dict(d)
        fmt = d.pop("format", None)
        if fmt != RUN_FORMAT:
            raise ConfigError(f"not a {RUN_FORMAT} config (format {fmt!r})")
        d["generator"] = GeneratorConfig.from_dict(d["generator"])
        d["encoding"] = EncodingConfig.from_dict(d["encoding"])
        d["adv"] = AdvConfig.from_dict(d.get("adv", {}))
        return config_from_dict(cls, d, "run")

    def default_name(self) -> str:
        g = self.generator
        sizes = f"{g.layers[0]}x{len(g.layers)}" if len(set(g.layers)) == 1 else "-".join(map(str, g.layers))
        adv = f"-{self.adv.estimator}{self.adv.steps}" if self.adv.steps else ""
        return f"{g.cell}-{sizes}-mle{self.mle_steps}{adv}-s{self.seed}"

    @property
    def total_steps(self) -> int:
        return self.mle_steps + self.adv.steps
