"""scripts/gpu_throughput.py on the CPU, tiny: every combination runs and is written out."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

import torchref.models as tm

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_throughput.py"


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_throughput_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_cpu_run_measures_every_combination(tmp_path: Path, one_thread: None,
                                                  capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "tp.json"
    doc = _load_script().main(["--device", "cpu", "--quick", "--compile", "off",
                               "--model", "simplecnn", "--threads", "0", "--json", str(out)])
    combos = {(r["amp"], r["channels_last"], r["compile"]) for r in doc["rows"]}
    assert combos == {(a, c, False) for a in (False, True) for c in (False, True)}
    for row in doc["rows"]:
        assert "error" not in row, row
        assert row["images_per_s"] > 0 and row["model"] == "simplecnn"
    assert json.loads(out.read_text()) == doc
    printed = capsys.readouterr().out
    assert "[4/4] amp on, channels_last on, compile off ..." in printed   # progress lines


def test_missing_model_is_a_clear_error(monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture) -> None:
    """--model cnn before torchref.models.CNN exists: an error naming it; auto falls back."""
    script = _load_script()
    monkeypatch.delattr(tm, "CNN", raising=False)
    with pytest.raises(SystemExit, match=r"--model: 'cnn' needs torchref.models.CNN"):
        script.main(["--device", "cpu", "--model", "cnn", "--quick", "--threads", "0"])
    assert script.build_model("auto")[0] == "simplecnn"
    with pytest.raises(SystemExit):
        script.parse_args(["--batch-size", "0"])
    assert "--batch-size: expected an integer >= 1, got 0" in capsys.readouterr().err
