"""python -m torchref.report: the table, JSON and heat map, and its verdicts match the tests'."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import scratch.layers as sl
from torchref import report
from torchref.components import COMPONENTS


def test_report_writes_table_json_and_heatmap(tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    code = report.main(["--out", str(tmp_path), "--examples", "3", "--only", "relu",
                        "step_function"])     # several names after one --only
    out = capsys.readouterr().out
    assert code == 0
    assert "component" in out and "max abs err" in out and "verdict" in out
    assert "step_function backward: derivative is 0" in out     # skips name their reason
    doc = json.loads((tmp_path / "parity_report.json").read_text())
    rows = doc["rows"]
    assert {(r["component"], r["direction"], r["dtype"]) for r in rows} == {
        (c, d, t) for c in ("relu", "step_function") for d in ("forward", "backward")
        for t in ("float32", "float64")}
    assert all(r["examples"] >= 3 and r["device"] == "cpu" for r in rows)
    assert {r["verdict"] for r in rows} == {"PASS", "skip"}
    assert doc["policy"]["float64"]["rtol"] == 1e-9
    assert (tmp_path / "parity_heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


class WrongSignSigmoid(sl.Sigmoid):
    def backward(self, dout):
        return -super().backward(dout)


def test_a_broken_component_is_a_red_row_and_a_nonzero_exit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    bad = dataclasses.replace(COMPONENTS["Sigmoid"], name="BadSigmoid", scratch=WrongSignSigmoid,
                              dtypes=(np.float64,))
    monkeypatch.setitem(COMPONENTS, "BadSigmoid", bad)
    assert report.main(["--out", str(tmp_path), "--examples", "5", "--only", "BadSigmoid"]) == 1
    out = capsys.readouterr().out
    rows = json.loads((tmp_path / "parity_report.json").read_text())["rows"]
    assert [(r["direction"], r["verdict"]) for r in rows] == [("forward", "PASS"),
                                                               ("backward", "FAIL")]
    assert rows[1]["max_ratio"] > 1
    assert "FAIL BadSigmoid backward cpu float64" in out and "backward dx" in out


def test_report_arguments(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        report.main(["--help"])
    assert exc.value.code == 0 and "--examples" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        report.main(["--only", "nope"])
    assert "--only: unknown components ['nope']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        report.main(["--examples", "0"])
    assert "--examples: expected a positive integer" in capsys.readouterr().err


def test_the_report_checks_every_pinned_edge_as_the_tests_do() -> None:
    """A pinned edge the drawn cases would not find (a Relu that breaks only at +inf) is a
    red row: the report runs the built-in edges and the component's own examples first."""
    class InfRelu(sl.Relu):
        def forward(self, x, train_flg=False):
            return np.where(np.isposinf(x), 0.0, super().forward(x)).astype(x.dtype)

    bad = dataclasses.replace(COMPONENTS["Relu"], scratch=InfRelu)
    rows = report.run_report([bad], [torch.device("cpu")], examples=1)
    forward = [r for r in rows if r.direction == "forward"]
    assert forward and all(r.verdict == "FAIL" for r in forward)
