"""Training: the schedule, the loop's learning, CPU determinism, and a loadable saved model."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from curriculab.config import train_config
from curriculab.evaluate import spread_subset
from curriculab.io import read_json
from curriculab.streams.schedules import BudgetSpec
from curriculab.streams.stream_file import write_stream
from curriculab.training.checkpoint import TrainingError
from curriculab.training.devices import claim_device, peak_bf16_flops
from curriculab.training.heldout import eval_steps, mean_loss
from curriculab.training.inputs import CellInputs
from curriculab.training.loop import train_cell
from curriculab.training.lr import lr_at
from curriculab.training.model import build_model, load_model
from curriculab.training.optim import make_optimizer, train_step
from curriculab.training.run import CellJob
from tests.support.helpers import TINY_CONFIG, cell_inputs

CFG = train_config(TINY_CONFIG["train"])
DOMAINS = ("cooking", "history")


def test_lr_warms_up_then_decays_to_the_floor() -> None:
    total = 100
    rates = [lr_at(step, total, CFG) for step in range(total + 1)]
    warmup = round(CFG.warmup_fraction * total)
    assert rates[0] < rates[warmup - 1] == pytest.approx(CFG.lr)
    assert all(a >= b for a, b in zip(rates[warmup:], rates[warmup + 1 :], strict=False))
    assert rates[total] == pytest.approx(CFG.min_lr_fraction * CFG.lr)


def test_eval_steps_cover_start_and_end() -> None:
    assert eval_steps(10, 4) == [0, 2, 5, 8, 10]
    assert eval_steps(2, 5) == [0, 1, 2]


def _inputs(root: Path, tiny_data: dict[str, Path], schedule: str = "d1_last") -> CellInputs:
    manifests = {n: read_json(tiny_data[n] / "manifest.json") for n in DOMAINS}
    stream = root / "stream.arrow"
    spec = TINY_CONFIG["grid"]["schedules"][schedule]
    write_stream(
        manifests, "cooking", 0.3, schedule, spec, 0, BudgetSpec(), stream, root / "stream.json"
    )
    return cell_inputs(tiny_data, stream)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_data) -> tuple[Path, CellInputs, dict]:
    root = tmp_path_factory.mktemp("run")
    inputs = _inputs(root, tiny_data)
    metrics = train_cell(CellJob("test", inputs, CFG, 0, root / "out", None), "micro")
    return root / "out", inputs, metrics


def test_training_lowers_test_loss_of_every_domain(trained) -> None:
    out, _, metrics = trained
    curve = pl.read_parquet(out / "curve.parquet")
    assert curve.columns == ["step", "tokens_seen", "domain", "loss", "bits_per_byte"]
    assert curve["step"].unique().sort().to_list() == eval_steps(metrics["steps"], CFG.eval_points)
    for domain in DOMAINS:
        losses = curve.filter(pl.col("domain") == domain).sort("step")["loss"].to_list()
        assert losses[-1] < losses[0] - 0.5, domain
    assert metrics["tokens_seen"] == curve["tokens_seen"].max() > 0
    assert metrics["tokens_per_second"] > 0 and metrics["n_params"] > 0


def test_cpu_training_is_deterministic(tmp_path: Path, trained) -> None:
    out, inputs, metrics = trained
    again = train_cell(CellJob("test", inputs, CFG, 0, tmp_path, None), "micro")
    assert again["final_curve_loss"] == metrics["final_curve_loss"]
    assert pl.read_parquet(tmp_path / "curve.parquet").equals(
        pl.read_parquet(out / "curve.parquet")
    )
    other = train_cell(CellJob("test", inputs, CFG, 1, tmp_path / "seed1", None), "micro")
    assert other["final_curve_loss"] != metrics["final_curve_loss"]


def test_saved_model_loads_and_reproduces_the_final_loss(trained) -> None:
    """The final test loss that training measured on the weights it held is the loss of the
    saved model, reloaded from safetensors in a fresh object."""
    from curriculab.data.shards import read_blocks

    out, inputs, metrics = trained
    model = load_model(out / "model")
    assert AutoModelForCausalLM.from_pretrained(out / "model").config == model.config
    tokenizer = AutoTokenizer.from_pretrained(out / "model")
    assert (out / "model" / "model.safetensors").exists()
    assert model.config.vocab_size % 64 == 0
    ids = tokenizer("Salt the soup.", return_tensors="pt")["input_ids"]
    assert torch.isfinite(model(input_ids=ids).logits).all()
    for domain in DOMAINS:
        blocks = read_blocks(inputs.test_shards[domain])
        chosen = blocks[spread_subset(len(blocks), CFG.final_eval_blocks)]
        final = metrics["final_test"][domain]
        assert final["n_blocks"] == len(chosen) and final["bits_per_byte"] > 0
        assert mean_loss(model, chosen, torch.device("cpu")) == pytest.approx(
            final["loss"], rel=1e-5
        )


def test_non_finite_loss_stops_with_cell_and_step(tmp_path: Path, tiny_data) -> None:
    inputs = _inputs(tmp_path, tiny_data)
    exploding = replace(CFG, lr=1e30, grad_clip=1e30, warmup_fraction=0.0)
    with pytest.raises(TrainingError, match=r"cell ratio=x: non-finite loss at step \d+"):
        train_cell(CellJob("ratio=x", inputs, exploding, 0, tmp_path / "out", None), "micro")
    assert not (tmp_path / "out" / "metrics.json").exists()


@pytest.mark.parametrize("schedule", ["cosine", "linear", "constant", "wsd"])
def test_every_lr_schedule_warms_up_then_follows_its_shape(schedule: str) -> None:
    cfg = replace(CFG, lr_schedule=schedule, warmup_fraction=0.1, decay_fraction=0.3)
    total = 100
    rates = [lr_at(step, total, cfg) for step in range(total)]
    assert rates[0] < rates[9] == pytest.approx(cfg.lr)  # warmup ends at the peak
    after = rates[10:]
    assert all(a >= b - 1e-12 for a, b in itertools.pairwise(after))  # never rises again
    floor = cfg.min_lr_fraction * cfg.lr
    if schedule == "constant":
        assert after == [pytest.approx(cfg.lr)] * len(after)
    else:
        assert rates[-1] == pytest.approx(floor)
    if schedule == "wsd":  # stable until the final 30 %, then a straight line to the floor
        assert rates[69] == pytest.approx(cfg.lr) and rates[70] < cfg.lr
        steps = np.diff(rates[70:])
        assert np.allclose(steps, steps[0])


def test_log_spaced_evaluations_are_dense_early() -> None:
    steps = eval_steps(1000, 8, "log")
    assert steps[0] == 0 and steps[-1] == 1000 and steps == sorted(set(steps))
    assert sum(s <= 100 for s in steps) >= 4  # at least half the points in the first tenth


def test_optimizer_skips_weight_decay_on_norms() -> None:
    model = build_model("micro", 300, 32, seed=0)
    decayed, plain = make_optimizer(model, CFG, torch.device("cpu")).param_groups
    assert (
        all(p.dim() >= 2 for p in decayed["params"]) and decayed["weight_decay"] == CFG.weight_decay
    )
    assert all(p.dim() == 1 for p in plain["params"]) and plain["weight_decay"] == 0.0


def test_gradient_accumulation_matches_one_large_batch() -> None:
    tokens = torch.randint(0, 300, (8, 32), generator=torch.Generator().manual_seed(0))
    cpu = torch.device("cpu")
    params = []
    for accumulation in (1, 4):
        model = build_model("micro", 300, 32, seed=0)
        # Plain SGD: the update is the (clipped) gradient itself; Adam would magnify float
        # noise in near-zero gradients into full-size steps.
        optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
        loss = train_step(model, optimizer, tokens, accumulation, CFG, cpu)
        params.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
        assert torch.isfinite(loss)
    assert torch.allclose(params[0], params[1], rtol=1e-5, atol=1e-7)


def test_metrics_report_size_speed_and_memory(trained) -> None:
    _, _, metrics = trained
    assert metrics["flops_per_token"] > 6 * metrics["n_params"]
    assert metrics["peak_memory_mb"] > 0 and metrics["step_seconds"] > 0
    assert metrics["batch_tokens"] == CFG.batch_size * 32 and metrics["resumed_at_step"] == 0
    assert "mfu" not in metrics  # only on CUDA, against the device's bf16 peak


def test_metrics_record_the_learning_rate_each_domain_met(trained) -> None:
    """d1_last under the cosine schedule: D1 sits at the end, where the learning rate is low,
    so its learning-rate-weighted share is below its share of tokens, and D2's above."""
    _, _, metrics = trained
    d1, d2 = metrics["exposure"]["cooking"], metrics["exposure"]["history"]
    assert d1["sequences"] + d2["sequences"] == metrics["tokens_seen"] // 32
    assert d1["token_share"] + d2["token_share"] == pytest.approx(1.0)
    assert d1["lr_weighted_share"] + d2["lr_weighted_share"] == pytest.approx(1.0)
    assert d1["lr_weighted_share"] < d1["token_share"] and d1["mean_lr"] < d2["mean_lr"]
    assert d1["mean_lr_fraction"] == pytest.approx(d1["mean_lr"] / CFG.lr)
    by_bin = metrics["lr_by_bin"]
    assert len(by_bin) == 50 and max(by_bin) <= 1.0 and by_bin[-1] < by_bin[len(by_bin) // 2]


def test_gpu_lock_is_exclusive_across_processes(tmp_path: Path) -> None:
    import subprocess
    import sys

    from curriculab.training.devices import _try_lock

    lock = tmp_path / "gpu-0.lock"
    probe = [
        sys.executable,
        "-c",
        f"from curriculab.training.devices import _try_lock; print(_try_lock({str(lock)!r}))",
    ]
    assert subprocess.run(probe, capture_output=True, text=True).stdout.strip() == "True"
    assert _try_lock(lock)  # the probe's lock died with its process
    assert subprocess.run(probe, capture_output=True, text=True).stdout.strip() == "False"


def test_devices() -> None:
    assert claim_device("cpu").type == "cpu"
    assert peak_bf16_flops("NVIDIA H100 80GB HBM3") == 989e12
    assert peak_bf16_flops("NVIDIA H100 PCIe") == 756e12
    assert peak_bf16_flops("a mystery accelerator") is None
