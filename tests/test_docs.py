"""The numbers README.md and docs/*.md quote from runs are the numbers the runs give.

Three kinds of quoted output, each checked against what produces it:

1. A figure in prose or a table is preceded by a marker naming the recorded results file
   and the path to the value in it, ``<!-- fig: FILE / KEY / ... -->0.9805``; the number
   must equal the recorded value, rounded to the decimals the doc shows
   (`test_every_marked_figure_equals_its_record`). The records are written by the scripts
   that measure them (``benchmarks/recipe.py --record``, ``backprop train``'s
   ``metrics.json``), and the cheap ones are re-run here
   (`test_recipe_record_reproduces`).
2. A console example, a fenced block whose commands start with ``$ backprop``, is run in
   a temporary directory and its output must match the block, apart from wall-clock
   seconds and the timestamp of a ``runs/`` directory (`test_console_examples_run_as_shown`).
3. Anything that looks like a result (an accuracy, an RMSE, "N epochs in S s", a test
   loss, a best epoch) and is neither marked nor in a console example fails
   `test_no_unmarked_result_numbers`, unless it sits in a region
   ``<!-- unchecked: WHY -->`` ... ``<!-- /unchecked -->`` whose WHY says where it came from
   and when (historical comparisons with no results file).

docs/benchmarks.md and docs/explore.md quote benchmark tables that cite their results
directories; `test_cited_results_files_exist` checks that every cited path exists.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RECIPE_RECORD = ROOT / "benchmarks" / "results" / "recipe.json"

#: ``<!-- fig: FILE / KEY / KEY -->`` then (after optional ``**``) the quoted number.
MARKER = re.compile(r"<!--\s*fig:\s*(?P<path>.+?)\s*-->\s*\**\s*(?P<number>-?\d[\d,]*(?:\.\d+)?)?")
UNCHECKED = re.compile(r"<!--\s*unchecked:(?P<why>.*?)-->.*?<!--\s*/unchecked\s*-->", re.S)
FENCE = re.compile(r"^```[^\n]*\n(?P<body>.*?)^```", re.S | re.M)

#: What a quoted result looks like. Scoped to the words runs print next to their numbers,
#: so that a flag default (``--lr 0.002``) or a shape is not taken for a result.
RESULT_PATTERNS = [
    re.compile(r"\baccuracy\b[^\n\d|]{0,12}\d*\.\d{2,}", re.I),
    re.compile(r"\bRMSE\b[^\n\d|]{0,12}\d", re.I),
    re.compile(r"\b\d+ epochs in (about )?\d"),
    re.compile(r"\btest loss\b[^\n\d|]{0,20}\d", re.I),
    re.compile(r"\bbest (validation )?epoch \d", re.I),
    # A results table's cell of accuracies: 0.9805, or 0.9019 / 0.9012 / 0.9005.
    re.compile(r"\|\s*\**0\.\d{4}\b"),
]


def _lookup(path_text: str) -> Any:
    """The value a marker names: a JSON file relative to the repository, then keys."""
    file, *keys = (p.strip() for p in path_text.split(" / "))
    value: Any = json.loads((ROOT / file).read_text(encoding="utf-8"))
    for key in keys:
        value = value[int(key)] if isinstance(value, list) else value[key]
    return value


def _as_shown(value: Any, shown: str) -> str:
    """``value`` written with the decimals (and thousands separators) of ``shown``."""
    decimals = len(shown.split(".")[1]) if "." in shown else 0
    return f"{float(value):{',' if ',' in shown else ''}.{decimals}f}"


def _markers() -> list[tuple[str, str, str | None]]:
    return [
        (doc.name, m["path"], m["number"])
        for doc in DOCS
        for m in MARKER.finditer(doc.read_text(encoding="utf-8"))
    ]


@pytest.mark.parametrize(("doc", "path", "number"), _markers())
def test_every_marked_figure_equals_its_record(doc: str, path: str, number: str | None) -> None:
    assert number is not None, f"{doc}: marker {path!r} is not followed by a number"
    value = _lookup(path)
    assert _as_shown(value, number) == number, f"{doc}: {number} quoted, {path} records {value}"


def test_the_docs_mark_figures() -> None:
    # The check above must have something to check: the README's results table is marked.
    assert sum(doc == "README.md" for doc, _, _ in _markers()) >= 6


def _console_blocks(text: str) -> list[str]:
    return [
        m["body"]
        for m in FENCE.finditer(text)
        if any(line.startswith("$ backprop") for line in m["body"].splitlines())
    ]


def _unmarked_text(text: str) -> str:
    """The text with marked figures, console examples and unchecked regions removed."""
    text = UNCHECKED.sub("", text)
    text = MARKER.sub("", text)
    for block in _console_blocks(text):
        text = text.replace(block, "")
    return text


@pytest.mark.parametrize("doc", [d for d in DOCS if d.name not in ("benchmarks.md", "explore.md")])
def test_no_unmarked_result_numbers(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    for m in UNCHECKED.finditer(text):
        assert re.search(r"\d{4}-\d\d-\d\d", m["why"]), f"{doc.name}: say when: {m['why']!r}"
    rest = _unmarked_text(text)
    found = [
        line.strip() for line in rest.splitlines() if any(p.search(line) for p in RESULT_PATTERNS)
    ]
    assert not found, f"{doc.name}: results quoted without a <!-- fig: ... --> marker: {found}"


def test_the_result_patterns_catch_stale_quotes() -> None:
    # What the docs said before their numbers were tied to records: each is caught.
    stale = [
        "digits: test accuracy 0.9415 on 359 test examples, test loss 0.2188",
        "trained 12 epochs in 1.60 s; best epoch 12 (lowest validation loss)",
        "| diabetes (442 rows, regression) | RMSE 66.8 (training-mean predictor: 77.1) |",
        "| fashion-mnist (60,000 / 10,000 images) | accuracy **0.9019** | **31.1 s** |",
        "| digits | **default**, seeds 0 / 1 | **0.9805 / 0.9749** | 1.3 |",
    ]
    for line in stale:
        assert _unmarked_text(line).strip(), line
        assert any(p.search(line) for p in RESULT_PATTERNS), line
    assert not any(p.search("| `--lr LR` | `0.002` | learning rate |") for p in RESULT_PATTERNS)


def _normalise(text: str) -> str:
    # Wall-clock seconds and the run directory's timestamp differ from run to run.
    text = re.sub(r"\b\d+(\.\d+)? s\b", "<seconds> s", text)
    return re.sub(r"runs/\d{8}-\d{6}(-\d+)?", "runs/<stamp>", text)


@pytest.mark.parametrize("doc", [d for d in DOCS if _console_blocks(d.read_text("utf-8"))])
def test_console_examples_run_as_shown(doc: Path, tmp_path: Path) -> None:
    """Each ``$ ...`` line runs (in order, in one directory) and prints what follows it.

    The commands run in bash with this environment's ``backprop`` first on the PATH, so an
    example may prepare a file (``$ printf '1,2\\n' > x.csv``) before using it.
    """
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "COLUMNS": "100",
    }
    for block in _console_blocks(doc.read_text(encoding="utf-8")):
        for chunk in re.split(r"^\$ ", block, flags=re.M)[1:]:
            command, _, shown = chunk.partition("\n")
            runs = sorted((tmp_path / "runs").glob("2*")) if (tmp_path / "runs").exists() else []
            if runs:  # the example's stamped directory is the one this test's run made
                command = re.sub(r"runs/\d{8}-\d{6}(-\d+)?", f"runs/{runs[-1].name}", command)
            proc = subprocess.run(
                ["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True
            )
            printed = proc.stdout + proc.stderr
            assert _normalise(printed).strip() == _normalise(shown).strip(), (
                f"{doc.name}: `{command}` printed\n{printed}"
            )


def test_recipe_record_reproduces(tmp_path: Path) -> None:
    """benchmarks/recipe.py still gives the recorded digits and diabetes results."""
    record = json.loads(RECIPE_RECORD.read_text(encoding="utf-8"))
    keys = [k for k in ("digits", "diabetes", "diabetes --keep last") if k in record]
    assert keys[:2] == ["digits", "diabetes"]
    env = {**os.environ}
    for key in keys:
        rec = record[key]
        env.pop("OPENBLAS_NUM_THREADS", None)
        if rec["machine"]["OPENBLAS_NUM_THREADS"] is not None:
            env["OPENBLAS_NUM_THREADS"] = rec["machine"]["OPENBLAS_NUM_THREADS"]
        out = tmp_path / f"{len(list(tmp_path.iterdir()))}.json"
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "benchmarks" / "recipe.py"),
                *key.split(),
                "--record",
                str(out),
            ],
            cwd=tmp_path,
            env=env,
            check=True,
            capture_output=True,
        )
        new = json.loads(out.read_text(encoding="utf-8"))[key]
        assert (new["epochs_run"], new["best_epoch"]) == (rec["epochs_run"], rec["best_epoch"])
        for metric in ("accuracy", "rmse", "baseline_rmse"):
            if metric in rec:
                # The precision the docs quote: 4 decimals of an accuracy, 0.01 of an RMSE.
                assert new[metric] == pytest.approx(
                    rec[metric], abs=1e-4 if metric == "accuracy" else 5e-3
                )


def test_cited_results_files_exist() -> None:
    cited = {
        (doc.name, p.rstrip(".,)`"))
        for doc in DOCS
        for p in re.findall(r"(?:benchmarks/results|docs/images)/[\w./-]+", doc.read_text("utf-8"))
        if "<" not in p
    }
    assert cited
    missing = [(doc, p) for doc, p in cited if not (ROOT / p).exists()]
    assert not missing, missing


def test_recipe_record_names_machine_load_and_date() -> None:
    for key, rec in json.loads(RECIPE_RECORD.read_text(encoding="utf-8")).items():
        assert rec["machine"]["cpu"] and rec["machine"]["cores"], key
        assert len(rec["load_average_before"]) == 3 and re.match(r"\d{4}-\d\d-\d\d", rec["date"])


def test_readme_python_api_snippet_runs_and_leaves_no_file(tmp_path: Path) -> None:
    """The README's "Python API" example runs, and writes nothing where it is run."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Python API") :]
    snippet = FENCE.search(section)
    assert snippet is not None and "backprop.save(" in snippet["body"]
    # A shorter run of the same code: the point is what it writes, not how well it trains.
    code = snippet["body"].replace("epochs=30", "epochs=1").replace("(256,)", "(8,)")
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True, capture_output=True)
    assert list(tmp_path.iterdir()) == []


def _errata_counts() -> tuple[int, int]:
    """(entries, withdrawn) in docs/errata.md's table: rows starting ``| N |``."""
    rows = re.findall(r"^\| \d+ \|.*$", (ROOT / "docs" / "errata.md").read_text(), re.M)
    return len(rows), sum("**not an error**" in row for row in rows)


def test_readme_errata_count_is_the_table_s() -> None:
    """README's "All N (M entries, K withdrawn ...)" is counted from docs/errata.md."""
    entries, withdrawn = _errata_counts()
    assert entries > 20 and withdrawn >= 1
    match = re.search(r"All (\d+) \((\d+) entries, one withdrawn", (ROOT / "README.md").read_text())
    assert match, "README.md no longer states the errata count"
    assert (int(match.group(1)), int(match.group(2))) == (entries - withdrawn, entries)
    assert withdrawn == 1  # "one withdrawn": the README's word must change with the count


def _cli_sections() -> dict[str, str]:
    """docs/cli.md's ``## `backprop NAME ...` `` sections by command name."""
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    parts = re.split(r"^## ", text, flags=re.M)
    return {m[1]: p for p in parts if (m := re.match(r"`backprop (\w+)", p))}


def test_cli_doc_names_every_subcommand_and_flag_of_the_parser() -> None:
    import argparse

    from backprop.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    sections = _cli_sections()
    missing = []
    for name, command in sub.choices.items():
        if f"| `backprop {name}" not in text:
            missing.append(f"{name} (in the table of commands)")
        flags = {s for a in command._actions for s in a.option_strings if s.startswith("--")}
        section = sections.get(name)
        if section is None:
            missing.append(f"{name} (a section)")
            continue
        missing += [f"{name} {f}" for f in sorted(flags - {"--help"}) if f"`{f}" not in section]
    assert not missing, f"docs/cli.md lacks: {missing}"
    assert f"It has {len(sub.choices)} subcommands" in " ".join(text.split())
