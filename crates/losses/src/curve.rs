//! Loss curves as text: the 4-column CSV users read (`step,loss,lr,grad_norm`) and the full
//! form (with the per-time-bucket losses) that training checkpoints carry, so a resumed run
//! continues the same curve. Numbers are written in Rust's shortest round-trip form, so reading
//! a curve back gives the same `f64`s.

use std::fmt::Write as _;

use crate::dsm::NUM_TIME_BUCKETS;
use crate::trainloop::CurveRow;

/// `step,loss,lr,grad_norm` and one line per row.
pub fn curve_csv(rows: &[CurveRow]) -> String {
    let mut s = String::with_capacity(40 * rows.len() + 32);
    s.push_str("step,loss,lr,grad_norm\n");
    for r in rows {
        let _ = writeln!(s, "{},{},{},{}", r.step, r.loss, r.lr, r.grad_norm);
    }
    s
}

/// Every field of every row, one line per row: `step,loss,lr,grad_norm,b_0,…,b_{K−1}`
/// (`K` = [`NUM_TIME_BUCKETS`]; no header). Read back by [`decode_curve`].
pub(crate) fn encode_curve(rows: &[CurveRow]) -> String {
    let mut s = String::with_capacity(150 * rows.len());
    for r in rows {
        let _ = write!(s, "{},{},{},{}", r.step, r.loss, r.lr, r.grad_norm);
        for b in r.bucket_loss {
            let _ = write!(s, ",{b}");
        }
        s.push('\n');
    }
    s
}

/// The rows written by [`encode_curve`]; an error names the malformed line.
pub(crate) fn decode_curve(text: &str) -> Result<Vec<CurveRow>, String> {
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            let bad = || format!("loss curve line {}: malformed row {line:?}", i + 1);
            let f: Vec<&str> = line.split(',').collect();
            if f.len() != 4 + NUM_TIME_BUCKETS {
                return Err(bad());
            }
            let num = |s: &str| s.parse::<f64>().map_err(|_| bad());
            let mut bucket_loss = [f64::NAN; NUM_TIME_BUCKETS];
            for (b, s) in bucket_loss.iter_mut().zip(&f[4..]) {
                *b = num(s)?;
            }
            Ok(CurveRow {
                step: f[0].parse().map_err(|_| bad())?,
                loss: num(f[1])?,
                lr: num(f[2])?,
                grad_norm: num(f[3])?,
                bucket_loss,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<CurveRow> {
        let mut b = [f64::NAN; NUM_TIME_BUCKETS];
        b[0] = 0.1 + 0.2;
        b[NUM_TIME_BUCKETS - 1] = 1e-300;
        vec![
            CurveRow {
                step: 1,
                loss: 0.1 + 0.2,
                lr: 2e-3 / 3.0,
                grad_norm: 1.0e-7,
                bucket_loss: b,
            },
            CurveRow {
                step: 2,
                loss: f64::MIN_POSITIVE,
                lr: 1.0,
                grad_norm: 12345.678,
                bucket_loss: [f64::NAN; NUM_TIME_BUCKETS],
            },
        ]
    }

    #[test]
    fn full_curve_round_trips_exactly_including_nan_buckets() {
        let back = decode_curve(&encode_curve(&rows())).unwrap();
        for (a, b) in back.iter().zip(rows()) {
            assert_eq!(
                (a.step, a.loss, a.lr, a.grad_norm),
                (b.step, b.loss, b.lr, b.grad_norm)
            );
            for (x, y) in a.bucket_loss.iter().zip(b.bucket_loss) {
                assert!(x.to_bits() == y.to_bits(), "{x} vs {y}");
            }
        }
        assert_eq!(back.len(), 2);
        assert!(decode_curve("1,2,3").unwrap_err().contains("line 1"));
    }

    #[test]
    fn csv_has_header_and_shortest_round_trip_numbers() {
        let csv = curve_csv(&rows());
        let mut lines = csv.lines();
        assert_eq!(lines.next(), Some("step,loss,lr,grad_norm"));
        assert_eq!(
            lines.next(),
            Some("1,0.30000000000000004,0.0006666666666666666,0.0000001")
        );
        let f: Vec<f64> = lines
            .next()
            .unwrap()
            .split(',')
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(f, vec![2.0, f64::MIN_POSITIVE, 1.0, 12345.678]);
    }
}
