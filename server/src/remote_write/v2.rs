//! Remote-Write 2.0: decoding `io.prometheus.write.v2.Request` in place.
//!
//! ```text
//!  Request { 4: repeated string symbols, 5: repeated TimeSeries }        (1–3 reserved)
//!    TimeSeries { 1: labels_refs (packed or not), 2: Sample, 3: Histogram (counted, dropped),
//!                 4: Exemplar (counted), 5: Metadata{1 type, 3 help_ref, 4 unit_ref},
//!                 6: created_timestamp (ignored) }
//! ```
//!
//! Two passes over the top level: the first collects the symbol table (each symbol checked
//! for UTF-8 once, kept as a borrowed `&str`) and the series' byte ranges, since protobuf
//! does not fix field order; the second decodes each series, resolving its references
//! against the table. A reference out of range, an odd-length `labels_refs` or a label
//! that fails the shared structural checks rejects that series only. The total size of the
//! label strings materialized is capped (see [`super::V2_LABEL_BYTES_FACTOR`]).
//!
//! Metadata becomes one [`MetricMetadata`] per metric family (the series' `__name__`),
//! first occurrence kept, and only when it says something (a type, help or unit).

use std::collections::HashSet;
use std::str::from_utf8;

use super::wire::Reader;
use super::{
    check_labels, finish_series, v1, DecodeError, Decoded, MetricMetadata, MetricType,
    ProblemReason, Scratch, V2_LABEL_BYTES_FACTOR, V2_LABEL_BYTES_FLOOR,
};
use o11y_tsdb::labels::METRIC_NAME;

/// Metadata as sent: type number and symbol references.
#[derive(Default, Clone, Copy)]
struct RawMetadata {
    metric_type: i32,
    help_ref: u64,
    unit_ref: u64,
}

pub(super) fn decode(buf: &[u8], out: &mut Decoded) -> Result<(), DecodeError> {
    let mut r = Reader::new(buf, "io.prometheus.write.v2.Request");
    let mut symbols: Vec<Option<&str>> = Vec::new();
    let mut series: Vec<&[u8]> = Vec::new();
    while let Some((field, v)) = r.next_field()? {
        match field {
            4 => symbols.push(from_utf8(r.bytes_of(v)?).ok()),
            5 => series.push(r.bytes_of(v)?),
            _ => {}
        }
    }
    if u32::try_from(series.len()).is_err() {
        return Err(DecodeError::TooManySeries);
    }
    let budget = buf
        .len()
        .saturating_mul(V2_LABEL_BYTES_FACTOR)
        .max(V2_LABEL_BYTES_FLOOR);
    let mut label_bytes = 0usize;
    let mut families: HashSet<&str> = HashSet::new();
    let mut sc = Scratch::default();
    for (index, buf) in series.into_iter().enumerate() {
        let index = index as u32;
        sc.refs.clear();
        sc.samples.clear();
        sc.pairs.clear();
        let (mut histograms, mut exemplars) = (0u64, 0u64);
        let mut meta: Option<RawMetadata> = None;
        let mut r = Reader::new(buf, "io.prometheus.write.v2.TimeSeries");
        while let Some((field, v)) = r.next_field()? {
            match field {
                1 => r.repeated_varint_into(v, &mut sc.refs)?,
                2 => sc
                    .samples
                    .push(v1::sample(r.bytes_of(v)?, "io.prometheus.write.v2.Sample")?),
                3 => {
                    r.bytes_of(v)?;
                    histograms += 1;
                }
                4 => {
                    r.bytes_of(v)?;
                    exemplars += 1;
                }
                // A message field seen twice is merged field by field (protobuf rule).
                5 => metadata(r.bytes_of(v)?, meta.get_or_insert_with(Default::default))?,
                6 => {
                    r.varint_of(v)?;
                }
                _ => {}
            }
        }
        let mut meta_strings = None;
        let checked = resolve(&sc.refs, &symbols, &mut sc.pairs)
            .and_then(|()| check_labels(&sc.pairs, &mut sc.names))
            .and_then(|()| match meta {
                Some(m) => {
                    let help = meta_symbol(&symbols, m.help_ref)?;
                    let unit = meta_symbol(&symbols, m.unit_ref)?;
                    meta_strings = Some((MetricType::from_wire(m.metric_type), help, unit));
                    Ok(())
                }
                None => Ok(()),
            });
        if checked.is_ok() && !sc.samples.is_empty() {
            let bytes: usize = sc.pairs.iter().map(|(n, v)| n.len() + v.len()).sum();
            label_bytes = label_bytes.saturating_add(bytes);
            if label_bytes > budget {
                return Err(DecodeError::LabelsTooLarge { limit: budget });
            }
        }
        if let (Ok(()), Some((metric_type, help, unit))) = (&checked, meta_strings) {
            let family = sc.pairs.iter().find(|(n, _)| *n == METRIC_NAME);
            let says_something =
                metric_type != MetricType::Unknown || !help.is_empty() || !unit.is_empty();
            if let Some(&(_, family)) = family.filter(|_| says_something) {
                if families.insert(family) {
                    out.metadata.push(MetricMetadata {
                        metric_family: family.to_string(),
                        metric_type,
                        help: help.to_string(),
                        unit: unit.to_string(),
                    });
                }
            }
        }
        finish_series(
            out,
            index,
            checked.map(|()| sc.pairs.as_slice()),
            &sc.samples,
            histograms,
            exemplars,
        );
    }
    Ok(())
}

/// The symbol at `reference`, if in range and valid UTF-8.
fn symbol<'a>(symbols: &[Option<&'a str>], reference: u64) -> Result<&'a str, ProblemReason> {
    let slot = usize::try_from(reference)
        .ok()
        .and_then(|i| symbols.get(i))
        .ok_or(ProblemReason::SymbolOutOfRange {
            reference,
            symbols: symbols.len(),
        })?;
    slot.ok_or(ProblemReason::InvalidUtf8)
}

/// A metadata reference: like [`symbol`], except that 0 (the "unset" default) is the
/// empty string even when the table is empty.
fn meta_symbol<'a>(symbols: &[Option<&'a str>], reference: u64) -> Result<&'a str, ProblemReason> {
    if reference == 0 && symbols.is_empty() {
        return Ok("");
    }
    symbol(symbols, reference)
}

/// Resolves name/value reference pairs into `pairs`.
fn resolve<'a>(
    refs: &[u64],
    symbols: &[Option<&'a str>],
    pairs: &mut Vec<(&'a str, &'a str)>,
) -> Result<(), ProblemReason> {
    if refs.len() & 1 == 1 {
        return Err(ProblemReason::OddLabelRefs);
    }
    pairs.reserve(refs.len() / 2);
    for p in refs.chunks_exact(2) {
        pairs.push((symbol(symbols, p[0])?, symbol(symbols, p[1])?));
    }
    Ok(())
}

/// `io.prometheus.write.v2.Metadata`, merged into `m`.
fn metadata(buf: &[u8], m: &mut RawMetadata) -> Result<(), DecodeError> {
    let mut r = Reader::new(buf, "io.prometheus.write.v2.Metadata");
    while let Some((field, v)) = r.next_field()? {
        match field {
            1 => m.metric_type = r.varint_of(v)? as i32,
            // uint32 fields; a larger value cannot index the table and is reported as such.
            3 => m.help_ref = r.varint_of(v)?,
            4 => m.unit_ref = r.varint_of(v)?,
            _ => {}
        }
    }
    Ok(())
}
