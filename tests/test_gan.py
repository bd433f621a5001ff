"""The adversarial phase: both estimators end to end, pmap on 8 CPU devices (kill -9 and resume
in the adversarial phase: tests/test_kill.py)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest

from conftest import make_tiny_corpus
from ganmusic import classify, data, runs, tboard, train
from ganmusic.encoding import EncodingConfig, Vocab
from ganmusic.gan import AdvConfig
from ganmusic.models import ClassifierConfig, GeneratorConfig

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny corpus and a tiny classifier trained on it (the discriminator's start)."""
    tmp = tmp_path_factory.mktemp("gan")
    corpus = data.load_corpus(make_tiny_corpus(tmp / "corpus"), cache_dir=tmp / "cache", progress=False,
                              split_fractions=(4, 1, 1))
    clf = tmp / "classifiers" / "tiny"
    classify.train_classifier(corpus, clf, ClassifierConfig.for_vocab(corpus.vocab, embed_dim=8, hidden=8, layers=2),
                              classify.TrainConfig(window=24, steps=10, batch_size=8, eval_every=5, warmup=2),
                              progress=False)
    return tmp, corpus, clf


def gan_config(corpus_root, clf, **adv):
    """One device, whatever the machine has (the 8-device test below asks for its own)."""
    gen = GeneratorConfig(vocab_size=Vocab(EncodingConfig()).size, layers=(16,), embed_dim=8)
    return runs.RunConfig(data=str(corpus_root), generator=gen, window=24, batch_size=8, mle_steps=4, lr=5e-3,
                          eval_every=2, checkpoint_every=2, seed=1, devices=1,
                           adv=AdvConfig(**{**dict(steps=4, classifier=str(clf), sample_every=2), **adv}))


@pytest.mark.parametrize("estimator", ["gumbel", "reinforce"])
def test_adversarial_run_end_to_end(setup, estimator):
    tmp, corpus, clf = setup
    run_dir = tmp / f"run-{estimator}"
    summary = train.train_run(gan_config(corpus.root, clf, estimator=estimator), run_dir, progress=False, corpus=corpus)
    assert summary["step"] == 8
    rows = runs.MetricsLog.read(run_dir / "metrics.jsonl")
    assert [r["step"] for r in rows] == [2, 4, 6, 8]
    assert [r["phase"] for r in rows] == ["mle", "mle", "adv", "adv"]
    for key in ("mle_loss", "g_adv_loss", "d_loss", "d_acc_real", "d_acc_fake", "d_acc_other", "d_generated",
                "sample_repeat_rate", "g_grad_norm", "d_grad_norm", "tokens_per_second", "val_nll"):
        assert np.isfinite(rows[-1][key]), key
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == ["000006", "000008"]
    events = tboard.read_scalars(run_dir / tboard.FOLDER)  # TensorBoard holds what metrics.jsonl holds
    for phase, key in (("mle", "mle_loss"), ("adv", "d_loss"), ("adv", "d_generated"), ("adv", "val_nll")):
        logged = [(r["step"], r[key]) for r in rows if r["phase"] == phase]
        assert [s for s, _ in events[f"{phase}/{key}"]] == [s for s, _ in logged], key
        assert [v for _, v in events[f"{phase}/{key}"]] == pytest.approx([v for _, v in logged], rel=1e-6), key
    assert len(list((run_dir / "samples" / "000008").glob("*.mid"))) == 4
    # The adversarial generator is what `sample` uses: its last checkpoint holds "gen".
    config, params = runs.restore_params(run_dir, "last")
    _, mle_params = runs.restore_params(run_dir, "4")
    assert any(not np.allclose(a, b) for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(mle_params)))


def test_adversarial_phase_needs_a_classifier():
    with pytest.raises(ValueError, match="classifier"):
        AdvConfig(steps=3)


MULTI_DEVICE = textwrap.dedent('''
    import os, sys, json
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
    os.environ["JAX_PLATFORMS"] = "cpu"  # 8 forced host devices are CPU devices, whatever else the machine has
    import jax, numpy as np
    sys.path.insert(0, sys.argv[1])
    from test_gan import gan_config
    from ganmusic import data, mle, train
    from ganmusic.encoding import Grammar, Vocab
    from ganmusic.gan import init_adv_state, make_adv_step
    from ganmusic.models import Generator

    corpus_root, clf, out = sys.argv[2], sys.argv[3], sys.argv[4]
    assert jax.local_device_count() == 8 and jax.default_backend() == "cpu"
    corpus = data.load_corpus(corpus_root, cache_dir=out + "/cache", progress=False, split_fractions=(4, 1, 1))
    config = gan_config(corpus_root, clf)
    disc = train.load_discriminator(config)
    model = Generator(config.generator)
    mle_state = mle.init_state(model, train.mle_optimizer(config), config.seed)
    g_opt, d_opt = train.adv_optimizers(config)
    state = init_adv_state(mle_state.gen, disc.params, g_opt, d_opt, config.seed)
    step_fn = make_adv_step(model, disc.model, Grammar(Vocab(config.encoding)), g_opt, d_opt, config.adv,
                            disc.window, train.Parallel.axis)
    batch = train.Batches(corpus, config, disc.window)(config.mle_steps + 1)
    diffs = {}
    results = {}
    for n in (1, 8):
        parallel = train.Parallel(n)
        new_state, metrics = parallel.pmap(step_fn)(parallel.replicate(state), parallel.shard(batch))
        results[n] = parallel.unreplicate(new_state)
    for part in ("gen", "disc"):
        diffs[part] = max(float(np.max(np.abs(a - b))) for a, b in zip(
            jax.tree.leaves(getattr(results[1], part)), jax.tree.leaves(getattr(results[8], part))))
    moved = max(float(np.max(np.abs(a - b))) for a, b in zip(
        jax.tree.leaves(results[8].gen), jax.tree.leaves(state.gen)))
    mle_step = mle.make_mle_step(model, train.mle_optimizer(config), train.Parallel.axis)
    mle_results = []
    for n in (1, 8):
        parallel = train.Parallel(n)
        new_state, _ = parallel.pmap(mle_step)(parallel.replicate(mle_state), parallel.shard(batch))
        mle_results.append(parallel.unreplicate(new_state).gen)
    diffs["mle"] = max(float(np.max(np.abs(a - b))) for a, b in zip(*map(jax.tree.leaves, mle_results)))
    print(json.dumps({"diffs": diffs, "moved": moved, "described": train.Parallel(8).describe(16)}))
''')


def test_pmap_on_8_devices_equals_one_device(setup, tmp_path):
    """One step of each phase. A whole run on 8 devices (both phases, checkpoints, validation) is
    tests/test_multihost.py's one-process reference."""
    _, corpus, clf = setup
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", MULTI_DEVICE, str(Path(__file__).parent), str(corpus.root),
                             str(clf), str(tmp_path)], capture_output=True, text=True, env=env, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["moved"] > 1e-6  # the step did something
    assert out["diffs"]["gen"] < 1e-5 and out["diffs"]["disc"] < 1e-5 and out["diffs"]["mle"] < 1e-5, out
    assert out["described"] == "8 cpu devices (cpu), batch 16: 2 per device"  # what train-gan says up front


@pytest.mark.parametrize("window", [24, 64])
def test_generated_samples_are_cut_into_note_aligned_windows(window):
    """The discriminator sees every part of a generated sample, each window starting on a note."""
    import jax.numpy as jnp

    from ganmusic import gan
    from ganmusic.encoding import T_SHIFT, Grammar
    from ganmusic.models import Generator

    vocab = Vocab(EncodingConfig())
    gen = Generator(GeneratorConfig(vocab_size=vocab.size, layers=(8,), embed_dim=4))
    params = gen.init(jax.random.key(0), jnp.zeros((1, 4), jnp.int32))["params"]
    length = gan.rollout_length(window, 3)
    keys = jax.random.split(jax.random.PRNGKey(1), 2)  # raw keys, as the step makes them
    one_hots, ids = gan.rollout(gen, params, Grammar(vocab), keys, length, 1.0, True)[:2]
    windows = np.asarray(gan.sample_windows(ids, window, 3))
    assert windows.shape == (2 * 3, window)
    assert (vocab.token_type[windows[:, 0]] == T_SHIFT).all()  # like real windows: on a note boundary
    assert (windows[2] == np.asarray(ids)[0, length - window:]).all()  # the last window ends the sample
    stride = gan.window_stride(window)
    assert window - 3 < stride <= window  # end to end: no token unseen, at most one note seen twice
    assert gan.sample_windows(one_hots, window, 3).shape == (6, window, vocab.size)
