//! Remote-Write 1.0: decoding `prometheus.WriteRequest` in place.
//!
//! ```text
//!  WriteRequest { 1: repeated TimeSeries, 3: repeated MetricMetadata }   (2 reserved)
//!    TimeSeries { 1: Label{1 name, 2 value}, 2: Sample{1 double value, 2 int64 timestamp},
//!                 3: Exemplar (counted), 4: Histogram (counted, dropped) }
//!    MetricMetadata { 1: type, 2: metric_family_name, 4: help, 5: unit }
//! ```
//!
//! Each series is read into the shared scratch (label strings borrowed from the buffer,
//! samples copied), checked, and only then materialized into the batch by
//! `finish_series`. Unknown fields are skipped, as protobuf requires.

use std::str::from_utf8;

use super::wire::{Reader, WireError};
use super::{
    check_labels, finish_series, DecodeError, Decoded, MetricMetadata, MetricType, ProblemReason,
    Scratch,
};
use o11y_tsdb::Sample;

pub(super) fn decode(buf: &[u8], out: &mut Decoded) -> Result<(), DecodeError> {
    let mut r = Reader::new(buf, "prometheus.WriteRequest");
    let mut sc = Scratch::default();
    let mut index: u32 = 0;
    while let Some((field, v)) = r.next_field()? {
        match field {
            1 => {
                series(r.bytes_of(v)?, index, &mut sc, out)?;
                index = index.checked_add(1).ok_or(DecodeError::TooManySeries)?;
            }
            3 => out.metadata.push(metadata(r.bytes_of(v)?)?),
            _ => {}
        }
    }
    Ok(())
}

fn series<'a>(
    buf: &'a [u8],
    index: u32,
    sc: &mut Scratch<'a>,
    out: &mut Decoded,
) -> Result<(), DecodeError> {
    sc.pairs.clear();
    sc.samples.clear();
    let (mut bad_utf8, mut histograms, mut exemplars) = (false, 0u64, 0u64);
    let mut r = Reader::new(buf, "prometheus.TimeSeries");
    while let Some((field, v)) = r.next_field()? {
        match field {
            1 => {
                let (name, value) = label(r.bytes_of(v)?)?;
                match (from_utf8(name), from_utf8(value)) {
                    (Ok(n), Ok(v)) => sc.pairs.push((n, v)),
                    _ => bad_utf8 = true,
                }
            }
            2 => sc
                .samples
                .push(sample(r.bytes_of(v)?, "prometheus.Sample")?),
            3 => {
                r.bytes_of(v)?;
                exemplars += 1;
            }
            4 => {
                r.bytes_of(v)?;
                histograms += 1;
            }
            _ => {}
        }
    }
    let checked = if bad_utf8 {
        Err(ProblemReason::InvalidUtf8)
    } else {
        check_labels(&sc.pairs, &mut sc.names)
    };
    finish_series(
        out,
        index,
        checked.map(|()| sc.pairs.as_slice()),
        &sc.samples,
        histograms,
        exemplars,
    );
    Ok(())
}

/// `prometheus.Label`: name and value as raw bytes (UTF-8 is checked by the caller).
fn label(buf: &[u8]) -> Result<(&[u8], &[u8]), WireError> {
    let mut r = Reader::new(buf, "prometheus.Label");
    let (mut name, mut value): (&[u8], &[u8]) = (b"", b"");
    while let Some((field, v)) = r.next_field()? {
        match field {
            1 => name = r.bytes_of(v)?,
            2 => value = r.bytes_of(v)?,
            _ => {}
        }
    }
    Ok((name, value))
}

/// `Sample { 1: double value, 2: int64 timestamp }`, shared with 2.0 (same layout).
pub(super) fn sample(buf: &[u8], message: &'static str) -> Result<Sample, WireError> {
    let mut r = Reader::new(buf, message);
    let mut s = Sample { t: 0, v: 0.0 };
    while let Some((field, v)) = r.next_field()? {
        match field {
            1 => s.v = r.double_of(v)?,
            // int64: two's complement in a 64-bit varint.
            2 => s.t = r.varint_of(v)? as i64,
            _ => {}
        }
    }
    Ok(s)
}

/// `prometheus.MetricMetadata`. Strings that are not UTF-8 are repaired (U+FFFD): metadata
/// is descriptive and never part of a series' identity.
fn metadata(buf: &[u8]) -> Result<MetricMetadata, WireError> {
    let mut r = Reader::new(buf, "prometheus.MetricMetadata");
    let mut m = MetricMetadata::default();
    while let Some((field, v)) = r.next_field()? {
        match field {
            // enum: an int32 in a varint; truncation is protobuf's own rule.
            1 => m.metric_type = MetricType::from_wire(r.varint_of(v)? as i32),
            2 => m.metric_family = String::from_utf8_lossy(r.bytes_of(v)?).into_owned(),
            4 => m.help = String::from_utf8_lossy(r.bytes_of(v)?).into_owned(),
            5 => m.unit = String::from_utf8_lossy(r.bytes_of(v)?).into_owned(),
            _ => {}
        }
    }
    Ok(m)
}
