"""Named recipes (issue 15): `TrainConfig.from_recipe`, ``backprop train --recipe``, and
the figures each recipe quotes, checked against the record its runs wrote."""

from __future__ import annotations

import contextlib
import io
import json
import statistics
from pathlib import Path

import pytest

from backprop import cli
from backprop.cli.train import train_config
from backprop.config import TrainConfig
from backprop.io import load
from backprop.recipes import RECIPES, describe_recipes

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "benchmarks" / "results" / "recipe.json"


def run(*argv: object) -> tuple[int, str, str]:
    """``backprop ARGV`` in-process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def parsed_config(*argv: str) -> TrainConfig:
    """The TrainConfig ``backprop train ARGV`` would train with."""
    args = cli.build_parser().parse_args(["train", *argv])
    args.argv = ["train", *argv]
    config: TrainConfig = train_config(args)
    return config


def test_every_recipe_is_a_valid_config_labelled_with_its_name() -> None:
    assert "default" in RECIPES and "best" in RECIPES
    assert RECIPES["default"].overrides == {}
    for name, recipe in RECIPES.items():
        config = TrainConfig.from_recipe(name)
        assert config.recipe == name
        for key, value in recipe.overrides.items():
            assert getattr(config, key) == value, (name, key)
    assert TrainConfig.from_recipe("default").to_dict() == {
        **TrainConfig().to_dict(),
        "recipe": "default",
    }


def test_explicit_values_win_over_the_recipe() -> None:
    best = RECIPES["best"].overrides
    config = TrainConfig.from_recipe("best", dropout=0.05, seed=2)
    assert (config.dropout, config.seed, config.hidden) == (0.05, 2, best["hidden"])
    with pytest.raises(ValueError, match="unknown recipe 'fastest'; choose one of default, best"):
        TrainConfig.from_recipe("fastest")
    with pytest.raises(ValueError, match="unknown recipe"):
        TrainConfig(recipe="fastest").validate()


def test_cli_flags_typed_win_over_the_recipe_even_at_their_default_value() -> None:
    best = RECIPES["best"].overrides
    assert best["epochs"] != TrainConfig().epochs and best["dropout"] != TrainConfig().dropout
    config = parsed_config("--recipe", "best")
    assert config == TrainConfig.from_recipe("best")
    # --dropout 0 is the flag's default: typed, it still overrides the recipe's dropout.
    config = parsed_config("--recipe", "best", "--dropout", "0", "--hidden", "64", "--seed", "1")
    assert (config.dropout, config.hidden, config.seed) == (0.0, (64,), 1)
    assert (config.epochs, config.augment) == (best["epochs"], best["augment"])
    assert parsed_config("--dropout", "0.2").recipe is None  # no --recipe: no label


@pytest.mark.parametrize("argv", [["--recipe"], ["--recipe", "list"], ["--data", "x", "--recipe"]])
def test_recipe_alone_lists_the_recipes_and_trains_nothing(argv: list[str]) -> None:
    code, text, err = run("train", *argv)
    assert (code, err) == (0, "")
    assert text.splitlines() == describe_recipes()
    for name in RECIPES:
        assert any(line.startswith(f"  {name} ") for line in text.splitlines()), name
    assert "--hidden 1024 1024" in text and f"reaches: {RECIPES['best'].reaches()}" in text


def test_an_unknown_recipe_is_one_line_naming_the_choices() -> None:
    code, text, err = run("train", "--recipe", "fastest")
    assert (code, text) == (2, "")
    assert err.splitlines() == [
        "backprop train: error: --recipe: must be one of "
        f"{', '.join([*RECIPES, 'list'])}, got 'fastest' (see backprop train --help)"
    ]


def test_the_best_recipe_runs_and_its_name_is_kept_with_the_model(tmp_path: Path) -> None:
    # A smoke run of the whole recipe (augmentation, dropout, two layers) on digits' 8x8
    # images, one epoch and narrow layers: the point is the wiring, not the accuracy.
    out = tmp_path / "r"
    code, _, err = run(
        "train", "--data", "digits", "--recipe", "best", "--epochs", 1, "--hidden", 32, 32,
        "--out", out, "--quiet",
    )  # fmt: skip
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    expected = TrainConfig.from_recipe("best", epochs=1, hidden=(32, 32)).to_dict()
    assert metrics["config"] == {k: metrics["config"][k] for k in expected} == expected
    assert load(out / "model.safetensors").config["recipe"] == "best"
    code, text, _ = run("info", out / "model.safetensors")
    assert code == 0 and "  recipe: best" in text.splitlines()


def _recorded() -> dict[str, dict[str, object]]:
    data: dict[str, dict[str, object]] = json.loads(RECORD.read_text(encoding="utf-8"))
    return data


@pytest.mark.parametrize("name", [n for n, r in RECIPES.items() if r.records])
def test_what_a_recipe_reaches_is_what_its_recorded_runs_gave(name: str) -> None:
    recipe = RECIPES[name]
    runs = [_recorded()[key] for key in recipe.records]
    assert recipe.accuracy is not None and recipe.fit_seconds is not None
    mean = statistics.fmean(float(r["accuracy"]) for r in runs)  # type: ignore[arg-type]
    assert f"{recipe.accuracy:.4f}" == f"{mean:.4f}"
    longest = max(float(r["fit_seconds"]) for r in runs)  # type: ignore[arg-type]
    assert f"{recipe.fit_seconds:.0f}" == f"{longest:.0f}"
    for key, r in zip(recipe.records, runs, strict=True):
        assert key.startswith(recipe.dataset), key
        # The run trained this recipe (seed aside): the record's config is the recipe's.
        config = dict(r["config"])  # type: ignore[call-overload]
        expected = TrainConfig.from_recipe(name, seed=config["seed"]).to_dict()
        # A run without --recipe trained the default recipe as well (recipe None).
        assert config.pop("recipe", None) in ({name, None} if name == "default" else {name})
        expected.pop("recipe")
        assert {k: config.get(k) for k in expected} == expected, key
