//! Encoding a [`WriteBatch`] as a remote_write 1.0 or 2.0 request body.
//!
//! ```text
//!  WriteBatch ──► sizes computed first ──► protobuf written once into one buffer ──► snappy
//! ```
//!
//! Written by hand rather than through the `prost` structs in `proto` for two reasons: it
//! writes borrowed label strings straight into the output (no copies of the batch), and it
//! keeps float values bit-exact. proto3 omits fields equal to the default, and `prost`
//! decides that with `value != 0.0`, which is also true of `-0.0`, so a negative zero
//! would come back as `+0.0`. Here a double is omitted only when its bits are all zero.

use std::collections::HashMap;

use o11y_tsdb::{Sample, WriteBatch};

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const BYTES: u8 = 2;

fn varint_len(v: u64) -> usize {
    // 1 byte per 7 bits, at least 1.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn put_key(buf: &mut Vec<u8>, field: u8, wire_type: u8) {
    // Every field number used here is below 16: the key is one byte.
    buf.push((field << 3) | wire_type);
}

/// Size of a length-delimited field (key, length, payload) with a `len`-byte payload.
fn bytes_field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

fn put_bytes(buf: &mut Vec<u8>, field: u8, b: &[u8]) {
    put_key(buf, field, BYTES);
    put_varint(buf, b.len() as u64);
    buf.extend_from_slice(b);
}

/// A string field, omitted when empty (proto3 default).
fn string_len(s: &str) -> usize {
    if s.is_empty() {
        0
    } else {
        bytes_field_len(s.len())
    }
}

fn put_string(buf: &mut Vec<u8>, field: u8, s: &str) {
    if !s.is_empty() {
        put_bytes(buf, field, s.as_bytes());
    }
}

/// `Sample { 1: double value, 2: int64 timestamp }` payload size.
fn sample_len(s: &Sample) -> usize {
    let v = if s.v.to_bits() != 0 { 9 } else { 0 };
    let t = if s.t != 0 {
        1 + varint_len(s.t as u64)
    } else {
        0
    };
    v + t
}

fn put_sample(buf: &mut Vec<u8>, field: u8, s: &Sample) {
    put_key(buf, field, BYTES);
    put_varint(buf, sample_len(s) as u64);
    if s.v.to_bits() != 0 {
        put_key(buf, 1, FIXED64);
        buf.extend_from_slice(&s.v.to_bits().to_le_bytes());
    }
    if s.t != 0 {
        put_key(buf, 2, VARINT);
        put_varint(buf, s.t as u64);
    }
}

fn samples_len(samples: &[Sample]) -> usize {
    samples.iter().map(|s| bytes_field_len(sample_len(s))).sum()
}

/// The protobuf (uncompressed) of a 1.0 `prometheus.WriteRequest`.
pub(super) fn write_request_v1(batch: &WriteBatch) -> Vec<u8> {
    let label_len = |n: &str, v: &str| string_len(n) + string_len(v);
    let series_len = |s: &o11y_tsdb::SeriesSamples| -> usize {
        s.labels
            .iter()
            .map(|l| bytes_field_len(label_len(&l.name, &l.value)))
            .sum::<usize>()
            + samples_len(&s.samples)
    };
    let total: usize = batch
        .series
        .iter()
        .map(|s| bytes_field_len(series_len(s)))
        .sum();
    let mut buf = Vec::with_capacity(total);
    for s in &batch.series {
        put_key(&mut buf, 1, BYTES);
        put_varint(&mut buf, series_len(s) as u64);
        for l in &s.labels {
            put_key(&mut buf, 1, BYTES);
            put_varint(&mut buf, label_len(&l.name, &l.value) as u64);
            put_string(&mut buf, 1, &l.name);
            put_string(&mut buf, 2, &l.value);
        }
        for x in &s.samples {
            put_sample(&mut buf, 2, x);
        }
    }
    buf
}

/// The protobuf (uncompressed) of a 2.0 `io.prometheus.write.v2.Request`, with a
/// de-duplicated symbol table that starts with the empty string, as the spec requires.
pub(super) fn request_v2(batch: &WriteBatch) -> Vec<u8> {
    let mut symbols: Vec<&str> = vec![""];
    let mut index: HashMap<&str, u64> = HashMap::from([("", 0)]);
    let mut refs: Vec<Vec<u64>> = Vec::with_capacity(batch.series.len());
    for s in &batch.series {
        let mut r = Vec::with_capacity(2 * s.labels.len());
        for l in &s.labels {
            for text in [l.name.as_str(), l.value.as_str()] {
                let i = *index.entry(text).or_insert_with(|| {
                    symbols.push(text);
                    symbols.len() as u64 - 1
                });
                r.push(i);
            }
        }
        refs.push(r);
    }
    let mut buf = Vec::new();
    for s in &symbols {
        // Repeated strings keep empty elements.
        put_bytes(&mut buf, 4, s.as_bytes());
    }
    for (s, r) in batch.series.iter().zip(&refs) {
        let packed: usize = r.iter().map(|&x| varint_len(x)).sum();
        let refs_len = if r.is_empty() {
            0
        } else {
            bytes_field_len(packed)
        };
        put_key(&mut buf, 5, BYTES);
        put_varint(&mut buf, (refs_len + samples_len(&s.samples)) as u64);
        if !r.is_empty() {
            put_key(&mut buf, 1, BYTES);
            put_varint(&mut buf, packed as u64);
            for &x in r {
                put_varint(&mut buf, x);
            }
        }
        for x in &s.samples {
            put_sample(&mut buf, 2, x);
        }
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_len_matches_put_varint() {
        for v in [0, 1, 127, 128, 16_383, 16_384, u32::MAX as u64, u64::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(b.len(), varint_len(v), "{v}");
        }
    }
}
