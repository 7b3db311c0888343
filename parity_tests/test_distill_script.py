"""scripts/distill.py end to end on a tiny budget: both implementations train the same networks."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from torchref.tolerance import assert_close

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "distill.py"
TINY = ["--seeds", "0", "--train-size", "100", "--teacher-hidden", "16", "--student-hidden", "4",
        "--teacher-epochs", "2", "--epochs", "2", "--threads", "0"]


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("distill_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("teacher_kind", "optimizer", "alpha"),
                         [("mlp", "sgd", "0.9"), ("simplecnn", "momentum", "0.9"),
                          ("cnn", "sgd", "none"), ("deepcnn", "adam", "0.5")])
def test_scratch_and_torch_train_the_same_distilled_student(teacher_kind: str,
                                                            optimizer: str, alpha: str) -> None:
    """Same initial weights and minibatches: after training, the logits agree (float64)."""
    distill = _load_script()
    logits = {}
    for impl in ("scratch", "torch"):
        args = distill.parse_args([*TINY, "--impl", impl, "--device", "cpu",
                                   "--teacher", teacher_kind, "--optimizer", optimizer,
                                   "--alpha", alpha])
        data = distill.load_dataset("digits", np.float64, args.train_size, seed=0)
        x = data[0][0]
        teacher = distill.train(args, teacher_kind, [16], data, 0, 2)
        student = distill.train(args, "mlp", [4], data, 0, 2, teacher_logits=teacher(x))
        logits[impl] = (teacher(x), student(data[1][0]))
    assert_close(logits["torch"][0], logits["scratch"][0], msg="teacher logits")
    assert_close(logits["torch"][1], logits["scratch"][1], msg="distilled student logits")


@pytest.mark.parametrize("impl", ["scratch", "torch"])
def test_script_writes_json_and_png(impl: str, tmp_path: Path) -> None:
    result = _load_script().main([*TINY, "--impl", impl, "--device", "cpu",
                                  "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["per_seed"] == result["per_seed"]
    assert set(saved["per_seed"][0]) == {"teacher", "student_alone", "student_distilled"}
    assert (tmp_path / "errors.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_script_rejects_bad_arguments() -> None:
    distill = _load_script()
    for teacher in ("cnn", "simplecnn", "deepcnn"):   # the CNN teachers have one hidden layer
        with pytest.raises(SystemExit):
            distill.parse_args([*TINY, "--teacher", teacher, "--teacher-hidden", "8", "8"])
    assert distill.parse_args([*TINY, "--alpha", "none"]).alpha is None
    for flag, value in (("--temperature", "0"), ("--lr", "nan"), ("--alpha", "2"),
                        ("--alpha", "half"),
                        ("--batch-size", "0"), ("--train-size", "-5"), ("--threads", "-1")):
        with pytest.raises(SystemExit) as exc:           # a usage error, not a traceback
            distill.parse_args([*TINY, flag, value])
        assert exc.value.code == 2
