//! The static table's file format: token vectors stored as signed bytes,
//! one scale per row, with a SHA-256 of the whole file at its end.
//!
//! ```text
//! magic    8 bytes   "RCLSTAT" then format version 1
//! dims     u32 LE    dimensions of every row
//! rows     u32 LE    rows (the tokenizer's vocabulary, then whole words)
//! id       u32 LE length, then UTF-8: the model id
//! words    u32 LE count, then per word: u8 length and UTF-8 bytes; word i
//!          is row (rows − count + i)
//! scales   rows × f32 LE
//! values   rows × dims × i8
//! sha256   32 bytes, of everything above
//! ```

use ring::digest::{SHA256, digest};

/// The first bytes of every table file.
const MAGIC: &[u8; 8] = b"RCLSTAT\x01";

/// A table read from its file: still quantized (a quarter of the `f32`
/// size in memory).
#[derive(Clone, PartialEq, Debug)]
pub(crate) struct Table {
    pub(crate) model_id: String,
    pub(crate) dims: usize,
    /// Whole words beyond the tokenizer's vocabulary, in row order.
    pub(crate) words: Vec<String>,
    pub(crate) scales: Vec<f32>,
    pub(crate) values: Vec<i8>,
}

impl Table {
    /// How many rows it has.
    pub(crate) fn rows(&self) -> usize {
        self.scales.len()
    }

    /// The row of the first whole word.
    pub(crate) fn first_word_row(&self) -> usize {
        self.rows() - self.words.len()
    }

    /// Adds row `row` × `weight` to `acc`.
    pub(crate) fn accumulate(&self, row: usize, weight: f32, acc: &mut [f32]) {
        let scale = self.scales[row] * weight;
        let start = row * self.dims;
        for (a, v) in acc.iter_mut().zip(&self.values[start..start + self.dims]) {
            *a += f32::from(*v) * scale;
        }
    }

    /// Quantizes `rows` (each `dims` long) into a table.
    #[cfg_attr(not(feature = "distill"), allow(dead_code))]
    pub(crate) fn quantize(
        model_id: String,
        dims: usize,
        words: Vec<String>,
        rows: &[Vec<f32>],
    ) -> Self {
        let mut scales = Vec::with_capacity(rows.len());
        let mut values = Vec::with_capacity(rows.len() * dims);
        for row in rows {
            let max = row.iter().fold(0.0_f32, |m, v| m.max(v.abs()));
            let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
            scales.push(scale);
            values.extend(
                row.iter()
                    .map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8),
            );
        }
        Self {
            model_id,
            dims,
            words,
            scales,
            values,
        }
    }

    /// The file's bytes.
    #[cfg_attr(not(feature = "distill"), allow(dead_code))]
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.values.len() + 4 * self.scales.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.dims as u32).to_le_bytes());
        out.extend_from_slice(&(self.rows() as u32).to_le_bytes());
        out.extend_from_slice(&(self.model_id.len() as u32).to_le_bytes());
        out.extend_from_slice(self.model_id.as_bytes());
        out.extend_from_slice(&(self.words.len() as u32).to_le_bytes());
        for word in &self.words {
            out.push(word.len() as u8);
            out.extend_from_slice(word.as_bytes());
        }
        for scale in &self.scales {
            out.extend_from_slice(&scale.to_le_bytes());
        }
        out.extend(self.values.iter().map(|v| *v as u8));
        let sum = digest(&SHA256, &out);
        out.extend_from_slice(sum.as_ref());
        out
    }

    /// Reads a table file; the error says what is wrong with it.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() >= MAGIC.len() && &bytes[..MAGIC.len()] != MAGIC {
            return Err("not a Recall static embedding table (bad magic or version)".into());
        }
        if bytes.len() < MAGIC.len() + 32 {
            return Err("too short: the file is damaged or truncated".into());
        }
        let (body, sum) = bytes.split_at(bytes.len() - 32);
        if digest(&SHA256, body).as_ref() != sum {
            return Err("checksum mismatch: the file is damaged or truncated".into());
        }
        let mut r = Reader {
            bytes: body,
            at: MAGIC.len(),
        };
        let dims = r.u32()? as usize;
        let rows = r.u32()? as usize;
        let id_len = r.u32()? as usize;
        let model_id = String::from_utf8(r.take(id_len)?.to_vec())
            .map_err(|_| "model id is not UTF-8".to_owned())?;
        let n_words = r.u32()? as usize;
        if dims == 0 || rows == 0 || n_words > rows {
            return Err("empty table or more words than rows".into());
        }
        let mut words = Vec::with_capacity(n_words);
        for _ in 0..n_words {
            let len = usize::from(r.take(1)?[0]);
            let word =
                std::str::from_utf8(r.take(len)?).map_err(|_| "a word is not UTF-8".to_owned())?;
            words.push(word.to_owned());
        }
        let scales = r
            .take(rows * 4)?
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect::<Vec<_>>();
        if scales.iter().any(|s| !s.is_finite() || *s <= 0.0) {
            return Err("a row scale is not a positive number".into());
        }
        let values = r.take(rows * dims)?.iter().map(|b| *b as i8).collect();
        if r.at != body.len() {
            return Err("trailing bytes after the values".into());
        }
        Ok(Self {
            model_id,
            dims,
            words,
            scales,
            values,
        })
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| "the file is shorter than its header says".to_owned())?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Table {
        Table::quantize(
            "test/static-2".into(),
            2,
            vec!["warfarin".into()],
            &[vec![1.0, -0.5], vec![0.0, 0.25], vec![-2.0, 2.0]],
        )
    }

    #[test]
    fn a_table_round_trips() {
        let table = small();
        let back = Table::from_bytes(&table.to_bytes()).unwrap();
        assert_eq!(back, table);
        assert_eq!(back.first_word_row(), 2);
        let mut acc = vec![0.0; 2];
        back.accumulate(0, 1.0, &mut acc);
        assert!((acc[0] - 1.0).abs() < 0.01 && (acc[1] + 0.5).abs() < 0.01);
    }

    #[test]
    fn damaged_files_are_refused_with_the_reason() {
        let bytes = small().to_bytes();
        let mut flipped = bytes.clone();
        flipped[20] ^= 1;
        assert!(
            Table::from_bytes(&flipped)
                .unwrap_err()
                .contains("checksum")
        );
        assert!(
            Table::from_bytes(&bytes[..bytes.len() - 1])
                .unwrap_err()
                .contains("checksum")
        );
        assert!(
            Table::from_bytes(b"hello, not a table")
                .unwrap_err()
                .contains("magic")
        );
        assert!(
            Table::from_bytes(b"RCLSTAT\x01 cut")
                .unwrap_err()
                .contains("truncated")
        );
    }
}
