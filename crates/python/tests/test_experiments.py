"""Experiments from Python: metrics.json as a dict, the CLI's messages as exceptions."""

import os

import pytest

import smoluchowski as sm


def test_reproduce_returns_metrics(tmp_path):
    m = sm.reproduce("smoluchowski", out=str(tmp_path / "out"))
    assert m["golden"]["passed"] is True
    assert m["experiment"]["experiment"]["name"] == "smoluchowski"
    assert "free_diffusion.ks_t_check" in m["statistics"]
    assert os.path.exists(tmp_path / "out" / "report.md")


def test_bad_manifests_raise_value_error_naming_the_field(tmp_path):
    src = os.path.join(sm._native.workspace_root(), "experiments", "smoluchowski.toml")
    with open(src) as f:
        text = f.read()
    bad = tmp_path / "x.toml"
    bad.write_text(text.replace("[free_diffusion]\ndiffusion = 0.5", "[free_diffusion]\ndiffusion = -0.5"))
    with pytest.raises(ValueError, match=r"free_diffusion.diffusion must be > 0 \(got -0.5\)"):
        sm.run(str(bad), out=str(tmp_path / "out"))
    with pytest.raises(ValueError, match="no experiment `nope`"):
        sm.reproduce("nope")
    assert not (tmp_path / "out").exists()
