//! `mixture-cfg` and `ring2d-inpaint` manifests: bad input is rejected before any work (exit 2,
//! naming the field and its value, no output written).

mod common;

fn expect_bad(name: &str, old: &str, new: &str, needles: &[&str]) {
    let (code, err, wrote) = common::run_modified(name, old, new);
    assert_eq!(code, Some(2), "{err}");
    for want in needles {
        assert!(err.contains(want), "expected {want:?} in:\n{err}");
    }
    assert!(!err.contains("panicked"), "{err}");
    assert!(!wrote, "no output for a rejected manifest");
}

#[test]
fn bad_mixture_cfg_manifests_exit_2_naming_the_field() {
    let m = "mixture-cfg-ci";
    expect_bad(
        m,
        "label_dropout = 0.2",
        "label_dropout = 1.5",
        &["conditioning.label_dropout", "1.5"],
    );
    expect_bad(
        m,
        "label_dropout = 0.2",
        "label_dropout = 0.0",
        &["conditioning.label_dropout", "(0, 1)"],
    );
    expect_bad(
        m,
        "label = 0",
        "label = 8",
        &["guidance.label", "< mixture.components = 8", "8"],
    );
    expect_bad(
        m,
        "weights = [1.0, 3.0]",
        "weights = [1.0, -3.0]",
        &["guidance.weights[1]", "-3"],
    );
    expect_bad(
        m,
        "weights = [1.0, 3.0]",
        "weights = [1.0]\ninterval = [0.6, 0.2]",
        &["guidance.interval"],
    );
    expect_bad(
        m,
        "energy_subsample = 1000",
        "energy_subsample = 1500",
        &["evaluation.energy_subsample", "1500"],
    );
    expect_bad(
        m,
        "mala_step = 0.005",
        "mala_step = -1.0",
        &["tilted.mala_step", "-1"],
    );
    expect_bad(
        m,
        "n_per_class = 2000",
        "n_per_class = 1_000_000_000_000",
        &["sampling.n_per_class", "fit in memory"],
    );
    expect_bad(
        m,
        "label_dropout = 0.2",
        "label_dropout = 0.2\nclasses = 3",
        &["classes"],
    );
}

#[test]
fn bad_ring2d_inpaint_manifests_exit_2_naming_the_field() {
    let m = "ring2d-inpaint-ci";
    expect_bad(
        m,
        "condition_x = 0.5",
        "condition_x = 2.5",
        &["inpainting.condition_x", "2.5"],
    );
    expect_bad(
        m,
        "also_x = [0.95]",
        "also_x = [0.95, nan]",
        &["inpainting.also_x[1]", "NaN"],
    );
    expect_bad(
        m,
        "repaint = { resample_count = 10, jump_length = 10 }",
        "repaint = { resample_count = 0, jump_length = 10 }",
        &["inpainting.repaint.resample_count", "0"],
    );
    expect_bad(
        m,
        "repaint = { resample_count = 10, jump_length = 10 }",
        "repaint = { resample_count = 10, jump_length = 0 }",
        &["inpainting.repaint.jump_length"],
    );
    expect_bad(
        m,
        "floor_resample_counts = [4, 16]",
        "floor_resample_counts = [4, 0]",
        &["inpainting.floor_resample_counts[1]", "0"],
    );
    expect_bad(
        m,
        "quadrature_nodes = 200_001",
        "quadrature_nodes = 10",
        &["evaluation.quadrature_nodes", "10"],
    );
    expect_bad(
        m,
        "n_radial = 14",
        "n_radial = 2",
        &["oracle.n_radial", "2"],
    );
}
