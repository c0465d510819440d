"""The engine demo (the README's main job until the estimator lands) must
really learn: held-out accuracy well above the majority-class baseline."""

import subprocess
import sys

from skrcnn._engine_demo import run_demo
from skrcnn.cli import main


def test_demo_learns_textures_beyond_majority_baseline():
    lines = []
    accuracy, majority = run_demo(n_train=32, n_test=16, epochs=8,
                                  sink=lines.append)
    assert accuracy > majority + 0.3
    assert accuracy > 0.85
    assert len(lines) == 9  # one line per epoch, then the score


def test_demo_is_deterministic_for_a_seed():
    first = run_demo(n_train=16, n_test=8, epochs=2, sink=lambda _: None)
    second = run_demo(n_train=16, n_test=8, epochs=2, sink=lambda _: None)
    assert first == second


def test_cli_demo_entry_points(capsys):
    assert main(["demo", "--epochs", "1"]) == 0
    assert "held-out pixel accuracy" in capsys.readouterr().out
    done = subprocess.run([sys.executable, "-m", "skrcnn", "demo", "--epochs",
                           "1"], capture_output=True, text=True, check=True)
    assert "held-out pixel accuracy" in done.stdout
