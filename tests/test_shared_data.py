"""Checks on the real RoboND data in ../shared; skipped where it is absent."""

import json
import subprocess
import sys
from pathlib import Path

from conftest import SHARED, needs_shared
from followme.data.robond import find_pairs
from followme.evaluation.evaluate import evaluate

pytestmark = needs_shared()
ROOT = Path(__file__).resolve().parents[1]


def test_real_folders_pair_completely():
    for name, n in (("train", 4131), ("validation", 1184)):
        pairs, problems = find_pairs(SHARED / name)
        assert len(pairs) == n and problems == []


def test_shipped_model_passes_on_validation_grade_and_agrees_with_the_independent_scorer(
        tmp_path):
    figures = evaluate(SHARED / "validation_grade", tmp_path, progress=False)
    assert figures["final_score"] >= 0.50
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "verify_score.py"),
                        str(SHARED / "validation_grade"), str(tmp_path),
                        "--json", str(tmp_path / "score.json")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().splitlines()[-1].startswith("agree=yes")
    written = json.loads((tmp_path / "score.json").read_text())
    assert written["final_score"] == figures["final_score"]
