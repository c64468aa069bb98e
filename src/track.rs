//! Per-epoch scalars for an experiment tracker: TensorBoard event files, written by this
//! module (no dependency: the format is a few framed protobuf records).
//!
//! Why TensorBoard rather than MLflow's file store: TensorBoard reads a folder of event files
//! with no server set up and no plugin (`tensorboard --logdir runs/`), which suits a run
//! directory; MLflow's file store is a layout of its own (experiment ids, meta.yaml files) that
//! its tracking server owns and has deprecated in favour of a database.
//!
//! The file is TFRecord framing around `tensorflow.Event` messages: each record is its length
//! (u64, little-endian), the masked CRC-32C of those 8 bytes, the message, and the masked
//! CRC-32C of the message. The first event carries `file_version = "brain.Event:2"`; each next
//! one a wall time, a step (the epoch) and a `Summary` of tagged `simple_value`s.

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::metrics::{RunMetrics, Scores};

/// The folder inside a run directory, and its one file (TensorBoard reads `*tfevents*`).
pub const FOLDER: &str = "tensorboard";
pub const FILE: &str = "events.out.tfevents.funnel";

/// Write the run's scalars (every epoch's training losses and validation metrics, the test
/// metrics at the best epoch) as `dir/tensorboard/events.out.tfevents.funnel`.
pub fn write(dir: &Path, m: &RunMetrics) -> Result<PathBuf> {
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let mut out = Vec::new();
    record(&mut out, &event(wall, 0, &[]));
    for h in &m.history {
        let mut values = vec![("loss/train/total".to_string(), h.train_loss)];
        for l in &h.train_stage_loss {
            values.push((format!("loss/train/{}", l.stage), l.loss));
            if let Some(w) = l.weight {
                values.push((format!("loss_weight/{}", l.stage), w));
            }
        }
        if let Some(v) = &h.valid {
            values.extend(stage_values("valid", v));
        }
        record(&mut out, &event(wall, h.epoch as i64, &values));
    }
    if let Some(t) = &m.test {
        let values = stage_values("test", t);
        // An event without values would read as a second file-version record.
        if !values.is_empty() {
            record(&mut out, &event(wall, m.best_epoch as i64, &values));
        }
    }
    let folder = dir.join(FOLDER);
    std::fs::create_dir_all(&folder).map_err(|e| crate::error::Error::io(&folder, e))?;
    let path = folder.join(FILE);
    crate::fsutil::write_atomic(&path, &out)?;
    Ok(path)
}

/// `auc/<split>/<stage>/<cumulative|conditional>` and the same for `logloss`.
fn stage_values(split: &str, stages: &[crate::metrics::StageMetrics]) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for s in stages {
        for (space, b) in [
            ("cumulative", &s.cumulative),
            ("conditional", &s.conditional),
        ] {
            let Scores { auc, logloss, .. } = b;
            for (what, v) in [("auc", auc), ("logloss", logloss)] {
                if let Some(v) = v {
                    out.push((format!("{what}/{split}/{}/{space}", s.name), *v));
                }
            }
        }
    }
    out
}

/// A protobuf varint.
fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A length-delimited field (wire type 2).
fn bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    varint(out, u64::from(field << 3 | 2));
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A `tensorflow.Event`: wall_time (1, double), step (2, int64), file_version (3, string) for
/// the first, else summary (5) of values { tag (1, string), simple_value (2, float) }.
fn event(wall: f64, step: i64, values: &[(String, f64)]) -> Vec<u8> {
    let mut e = Vec::new();
    e.push(1 << 3 | 1);
    e.extend_from_slice(&wall.to_le_bytes());
    if step != 0 {
        varint(&mut e, 2 << 3);
        varint(&mut e, step as u64);
    }
    if values.is_empty() {
        bytes_field(&mut e, 3, b"brain.Event:2");
        return e;
    }
    let mut summary = Vec::new();
    for (tag, v) in values {
        let mut value = Vec::new();
        bytes_field(&mut value, 1, tag.as_bytes());
        value.push(2 << 3 | 5);
        value.extend_from_slice(&(*v as f32).to_le_bytes());
        bytes_field(&mut summary, 1, &value);
    }
    bytes_field(&mut e, 5, &summary);
    e
}

/// One TFRecord: length, masked CRC of the length, data, masked CRC of the data.
fn record(out: &mut Vec<u8>, data: &[u8]) {
    let len = (data.len() as u64).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
}

fn masked_crc(data: &[u8]) -> u32 {
    let c = crc32c(data);
    (c.rotate_right(15)).wrapping_add(0xa282_ead8)
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), bit by bit: event files are small.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_values() {
        // The standard check value of CRC-32C, and RFC 3720's (iSCSI) 32 zero bytes.
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62a8_ab43);
    }

    #[test]
    fn varints_and_fields_by_hand() {
        let mut v = Vec::new();
        varint(&mut v, 300);
        assert_eq!(v, [0xac, 0x02]);
        let mut f = Vec::new();
        bytes_field(&mut f, 1, b"ab");
        assert_eq!(f, [0x0a, 2, b'a', b'b']);
    }

    /// The bytes TensorBoard's own writer produces for the same two events (tensorboard 2.21.0,
    /// 2026-11-30):
    /// ```python
    /// from tensorboard.summary.writer.record_writer import RecordWriter
    /// from tensorboard.compat.proto import event_pb2, summary_pb2
    /// import io; buf = io.BytesIO(); w = RecordWriter(buf)
    /// w.write(event_pb2.Event(wall_time=1.5, file_version="brain.Event:2").SerializeToString())
    /// v = summary_pb2.Summary.Value(tag="auc/valid/click/cumulative", simple_value=0.75)
    /// w.write(event_pb2.Event(wall_time=1.5, step=3,
    ///         summary=summary_pb2.Summary(value=[v])).SerializeToString())
    /// print(buf.getvalue().hex())
    /// ```
    #[test]
    fn records_match_tensorboards_own_writer() {
        const WANT: &str = "1800000000000000a37f4b2209000000000000f83f1a0d627261696e2e4576656e743a322a28646c300000000000000095f5d05f09000000000000f83f10032a230a210a1a6175632f76616c69642f636c69636b2f63756d756c6174697665150000403fb718c191";
        let mut out = Vec::new();
        record(&mut out, &event(1.5, 0, &[]));
        record(
            &mut out,
            &event(1.5, 3, &[("auc/valid/click/cumulative".into(), 0.75)]),
        );
        let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, WANT);
    }

    #[test]
    fn an_event_record_by_hand() {
        // Event { wall_time: 1.5, step: 3, summary { value { tag: "a", simple_value: 0.5 } } }.
        let e = event(1.5, 3, &[("a".into(), 0.5)]);
        let mut want = vec![0x09];
        want.extend_from_slice(&1.5f64.to_le_bytes());
        want.extend_from_slice(&[0x10, 3]);
        // summary (field 5): value (field 1) of tag (1: "a") and simple_value (2, fixed32).
        want.extend_from_slice(&[0x2a, 10, 0x0a, 8, 0x0a, 1, b'a', 0x15]);
        want.extend_from_slice(&0.5f32.to_le_bytes());
        assert_eq!(e, want);
        let mut r = Vec::new();
        record(&mut r, &e);
        assert_eq!(&r[..8], &(e.len() as u64).to_le_bytes());
        assert_eq!(r.len(), 8 + 4 + e.len() + 4);
        let crc = u32::from_le_bytes(r[r.len() - 4..].try_into().unwrap());
        assert_eq!(crc, crc32c(&e).rotate_right(15).wrapping_add(0xa282_ead8));
    }
}
