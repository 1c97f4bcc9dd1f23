//! `count_values("label", v)`: per step, the number of series of each group having each
//! value; the value becomes label `label` (Go's `strconv.FormatFloat(f, 'f', -1, 64)`)
//! (Prometheus's `aggregationCountValues`).
//!
//! Each series' group without the value label (its "base") is computed once. Then the steps
//! are walked in order with a cursor per series; an output series exists per (base, value)
//! and gets one point per step where that value occurs. `by` always keeps the value label;
//! `without` keeps it unless it is listed (or is `__name__`). Outputs never carry
//! `drop_name`.

use std::collections::HashMap;

use o11y_tsdb::labels::{write_go_quoted, Label, Labels, METRIC_NAME};

use super::super::error::QueryError;
use super::super::value::{format_float, FPoint, Matrix, Series};
use super::{grouping_key, grouping_labels, StepGrid};

/// The one bit pattern all NaNs count under (they all format as `NaN`).
const NAN_BITS: u64 = 0x7ff8_0000_0000_0001;

pub(super) fn count_values(
    grid: &StepGrid,
    grouping: &[String],
    without: bool,
    label: &str,
    input: Matrix,
) -> Result<Matrix, QueryError> {
    if label.is_empty() {
        let mut quoted = String::new();
        // Writing into a String cannot fail.
        let _ = write_go_quoted(&mut quoted, label);
        return Err(QueryError::Execution(format!(
            "invalid label name {quoted}"
        )));
    }
    let keep_value = !without
        || (grouping
            .binary_search_by(|g| g.as_str().cmp(label))
            .is_err()
            && label != METRIC_NAME);

    // Base group of every series (its grouping without the value label).
    let mut base_index: HashMap<Box<[u8]>, u32> = HashMap::new();
    let mut base_labels: Vec<Vec<Label>> = Vec::new();
    let mut series_base: Vec<u32> = Vec::with_capacity(input.len());
    let mut buf = Vec::with_capacity(256);
    for s in &input {
        buf.clear();
        grouping_key(&s.metric, grouping, without, Some(label), &mut buf);
        let b = match base_index.get(buf.as_slice()) {
            Some(&b) => b,
            None => {
                let b = base_labels.len() as u32;
                base_index.insert(buf.as_slice().into(), b);
                base_labels.push(grouping_labels(&s.metric, grouping, without, Some(label)));
                b
            }
        };
        series_base.push(b);
    }

    let mut out_index: HashMap<(u32, u64), u32> = HashMap::new();
    let mut out: Vec<Series> = Vec::new();
    let mut counts: Vec<u32> = Vec::new();
    let mut touched: Vec<u32> = Vec::new();
    let mut cursors = vec![0usize; input.len()];
    // Per series, its last value's bits and output: a series usually keeps its value.
    let mut last: Vec<Option<(u64, u32)>> = vec![None; input.len()];
    for step in 0..grid.len() {
        let ts = grid.time(step);
        for (si, s) in input.iter().enumerate() {
            let pts = &s.floats;
            let c = &mut cursors[si];
            while *c < pts.len() && pts[*c].t < ts {
                *c += 1;
            }
            if *c >= pts.len() || pts[*c].t != ts {
                continue;
            }
            let f = pts[*c].f;
            *c += 1;
            let bits = if !keep_value {
                0
            } else if f.is_nan() {
                NAN_BITS
            } else {
                f.to_bits()
            };
            let base = series_base[si];
            if let Some((b, o)) = last[si] {
                if b == bits {
                    let o = o as usize;
                    if counts[o] == 0 {
                        touched.push(o as u32);
                    }
                    counts[o] += 1;
                    continue;
                }
            }
            let o = *out_index.entry((base, bits)).or_insert_with(|| {
                let mut labels = base_labels[base as usize].clone();
                if keep_value {
                    let at = labels.partition_point(|l| l.name.as_str() < label);
                    labels.insert(at, Label::new(label, format_float(f)));
                }
                out.push(Series {
                    metric: Labels::from_sorted_unchecked(labels),
                    floats: Vec::new(),
                    drop_name: false,
                });
                counts.push(0);
                (out.len() - 1) as u32
            }) as usize;
            last[si] = Some((bits, o as u32));
            if counts[o] == 0 {
                touched.push(o as u32);
            }
            counts[o] += 1;
        }
        for o in touched.drain(..) {
            let o = o as usize;
            out[o].floats.push(FPoint {
                t: ts,
                f: f64::from(counts[o]),
            });
            counts[o] = 0;
        }
    }
    Ok(out)
}
