//! `mnist-ddpm` manifests: bad input is rejected before any work (exit 2, naming the field or
//! the data file), without the network (the data directory is checked before anything runs).

mod common;

#[test]
fn sample_count_is_bounded_by_memory() {
    let (old, new) = ("n_samples = 256", "n_samples = 1_000_000_000_000");
    let (code, err, wrote) = common::run_modified("mnist-ddpm-ci", old, new);
    assert_eq!(code, Some(2), "{err}");
    for want in [
        "sampling.n_samples must be small enough to fit in memory",
        "PiB",
        "(got 1000000000000)",
    ] {
        assert!(err.contains(want), "expected {want:?} in:\n{err}");
    }
    assert!(!wrote, "no output for a rejected manifest");
}

#[test]
fn the_notes_schedule_needs_an_explicit_opt_in() {
    let (old, new) = ("steps = 1000 }", "steps = 200 }");
    let (code, err, wrote) = common::run_modified("mnist-ddpm-ci", old, new);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("ddpm.schedule"), "{err}");
    assert!(err.contains("allow_prior_mismatch"), "{err}");
    assert!(err.contains("ᾱ_N = 0.1322"), "{err}");
    assert!(!wrote);
}

#[test]
fn a_missing_data_directory_is_named() {
    let (old, new) = (
        "pixel_scale = \"symmetric\"",
        "pixel_scale = \"symmetric\"\ndirectory = \"/nonexistent/mnist\"",
    );
    let (code, err, wrote) = common::run_modified("mnist-ddpm-ci", old, new);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("/nonexistent/mnist"), "{err}");
    assert!(err.contains("train-images-idx3-ubyte"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!wrote);
}

#[test]
fn memorisation_images_beyond_the_held_out_half_are_refused() {
    let (old, new) = (
        "min_accuracy = 0.99",
        "min_accuracy = 0.99\nmemorisation_images = 6000",
    );
    let (code, err, wrote) = common::run_modified("mnist-ddpm-ci", old, new);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("evaluation.memorisation_images"), "{err}");
    assert!(err.contains("6000"), "{err}");
    assert!(!wrote);
}
