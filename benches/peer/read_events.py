#!/usr/bin/env python3
"""Reads a TensorBoard log directory written by smoluchowski-tensorboard with TensorBoard's own
reader (EventAccumulator) and prints what it finds; with --expect-demo, checks the run written by
`cargo run -p smoluchowski-tensorboard --example tb_demo -- LOGDIR` value for value.

--pin prints the record bytes pinned in crates/tensorboard/src/lib.rs's test
`records_match_tensorboards_own_encoding`, computed with TensorBoard's protobuf and TFRecord writer.

Usage: python3 benches/peer/read_events.py LOGDIR [--expect-demo]
       python3 benches/peer/read_events.py --pin
Needs `pip install tensorboard` (and pillow for decoding the images). Not part of CI.
"""
import argparse
import io
import sys


def pin():
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    def record(ev):
        buf = io.BytesIO()
        RecordWriter(buf).write(ev.SerializeToString())
        return buf.getvalue().hex()

    S = summary_pb2.Summary
    print("PIN_VERSION", record(event_pb2.Event(wall_time=1.5, file_version="brain.Event:2")))
    print("PIN_SCALAR", record(event_pb2.Event(
        wall_time=1.5, step=7, summary=S(value=[S.Value(tag="loss", simple_value=0.25)]))))
    print("PIN_SCALAR_NEG", record(event_pb2.Event(
        wall_time=2.0, step=-3, summary=S(value=[S.Value(tag="lr", simple_value=-1e-3)]))))
    img = S.Image(height=1, width=2, colorspace=1, encoded_image_string=b"\x89PNG")
    print("PIN_IMAGE", record(event_pb2.Event(
        wall_time=1.5, step=300, summary=S(value=[S.Value(tag="samples", image=img)]))))


def read(logdir, expect_demo):
    import numpy as np
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(logdir, size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    print("tags:", {k: v for k, v in tags.items() if v and k in ("scalars", "images")})
    scalars = {t: acc.Scalars(t) for t in tags["scalars"]}
    for t, evs in scalars.items():
        print(f"scalar {t}: {len(evs)} events, steps {evs[0].step}..{evs[-1].step}, "
              f"first {evs[0].value!r}, last {evs[-1].value!r}")
    images = {}
    for t in tags["images"]:
        evs = acc.Images(t)
        images[t] = [(e.step, e.width, e.height, np.array(Image.open(io.BytesIO(e.encoded_image_string))))
                     for e in evs]
        s, w, h, px = images[t][-1]
        print(f"image {t}: {len(evs)} events, steps {[e.step for e in evs]}, {w}x{h}, "
              f"decoded PNG shape {px.shape}, dtype {px.dtype}, last pixel sum {int(px.sum())}")
    if not expect_demo:
        return
    bad = []
    f32 = np.float32
    want = {"loss": lambda s: f32(1) / (f32(1) + f32(s)), "lr": lambda s: f32(2e-4),
            "grad_norm": lambda s: np.sqrt(f32(s + 1))}
    for t, fn in want.items():
        evs = scalars.get(t, [])
        if [e.step for e in evs] != list(range(50)):
            bad.append(f"{t}: steps {[e.step for e in evs]}")
        bad += [f"{t} step {e.step}: {e.value!r} != {fn(e.step)!r}" for e in evs if f32(e.value) != fn(e.step)]
    for s, w, h, px in images.get("samples", []):
        exp = np.zeros((57, 57), np.uint8)
        for k in range(4):
            r0, c0 = (k // 2) * 29, (k % 2) * 29
            i, j = np.mgrid[0:28, 0:28]
            exp[r0:r0 + 28, c0:c0 + 28] = np.round(((i + j + 8 * k + s) % 256) / 255.0 * 255.0)
        if (w, h) != (57, 57) or px.shape != (57, 57) or not np.array_equal(px, exp):
            bad.append(f"samples step {s}: {w}x{h}, pixels differ from the expected grid")
    for s, w, h, px in images.get("rgb", []):
        exp = (np.arange(18) * 14).astype(np.uint8).reshape(2, 3, 3)
        if (w, h) != (3, 2) or not np.array_equal(px, exp):
            bad.append(f"rgb step {s}: {w}x{h} {px.tolist()}")
    if [s for s, *_ in images.get("samples", [])] != [0, 10, 20, 30, 40]:
        bad.append(f"samples steps {[s for s, *_ in images.get('samples', [])]}")
    if bad:
        print("FAIL:\n  " + "\n  ".join(bad[:20]))
        sys.exit(1)
    print("OK: 3 scalar series x 50 steps equal to the f32 values written; 5 sample grids and "
          "5 RGB images decode to the exact pixels")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("logdir", nargs="?")
    p.add_argument("--expect-demo", action="store_true")
    p.add_argument("--pin", action="store_true")
    a = p.parse_args()
    if a.pin:
        return pin()
    if not a.logdir:
        p.error("LOGDIR is required unless --pin")
    read(a.logdir, a.expect_demo)


if __name__ == "__main__":
    main()
