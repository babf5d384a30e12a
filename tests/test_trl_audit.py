"""The committed TRL audit (benchmarks/results/trl_audit.json, from tools/trl_audit.py) covers the
installed TRL: its version, and every loss_type that TRL's GRPOConfig documents."""

import json
import pathlib
import re

import pytest

RESULTS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "trl_audit.json"


def test_results_cover_the_installed_trl():
    trl = pytest.importorskip("trl")
    from trl import GRPOConfig

    data = json.loads(RESULTS.read_text())
    assert data["trl"] == trl.__version__, (
        f"{RESULTS.name} audits TRL {data['trl']}, but {trl.__version__} is installed: "
        "rerun python tools/trl_audit.py")
    help_text = GRPOConfig.__dataclass_fields__["loss_type"].metadata["help"]
    shipped = set(re.findall(r"'(\w+)'", help_text.split("Supported values are")[1].split(".")[0]))
    audited = {row["options"]["loss_type"] for row in data["rows"]}
    assert shipped <= audited, f"loss types not audited: {sorted(shipped - audited)}"


def test_results_agree_with_pglib_per_batch_and_in_verdict():
    data = json.loads(RESULTS.read_text())
    for row in data["rows"]:
        # TRL's gradient on each batch is the matching pglib.llm loss's, up to float32 rounding
        assert row["max_relative_difference_to_pglib"] < 1e-5, row["label"]
        exact, sampled = row["exact"], row["sampled"]
        assert sampled["unbiased"] is (exact["verdict"] == "grad J"), row["label"]
        if exact["verdict"] != "grad J":
            assert exact["power_at_exact_bias"] > 0.9, row["label"]
        # and the sampled mean is not rejected as the matching pglib loss's exact mean
        assert row["pglib_test_p_value"] > 1e-3, row["label"]
