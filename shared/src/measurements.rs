//! Sequences with measured values, from text: the one reader of training
//! tables (`promoscope train`, `evaluate`, `tune` and the page's Train tab),
//! and the `--holdout` split.
//!
//! A table is DREAM lines (`SEQUENCE<TAB>VALUE`) or, when its first line is a
//! header naming a `sequence` column ([`Header::detect`]), rows of that
//! table with the values in the column named `expression` or another the
//! user picks (plus an optional `subset`). Blank lines are skipped.

use crate::encoding::{EncodeError, encode_into, fits};
use crate::records::{Header, LineError};

/// The column values are read from unless another is named.
pub const VALUE_COLUMN: &str = "expression";

/// Whether a sequence is held out by `--holdout percent`: the CRC-32 (zlib's)
/// of its letters in upper case, mod 100, is below `percent`. The split
/// depends on the sequence alone, not on file order or a seed, so every run,
/// tool and file (the CLI, the page, `scripts/baseline_kmer.py`) holds out
/// the same sequences.
pub fn held_out(upper_case_letters: &[u8], percent: u32) -> bool {
    crc32fast::hash(upper_case_letters) % 100 < percent
}

/// The column of values a table offers: for a header, [`VALUE_COLUMN`] when
/// it has one, else its first column other than `sequence`, `id` and
/// `subset`; for DREAM lines (no header), [`VALUE_COLUMN`], the name their
/// second field goes by.
pub fn value_column(text: &str) -> String {
    let first = text.lines().next().unwrap_or("");
    let Some(header) = Header::detect(first.trim_end_matches('\r')) else {
        return VALUE_COLUMN.into();
    };
    if header.column(VALUE_COLUMN).is_some() {
        return VALUE_COLUMN.into();
    }
    let other = |name: &&String| {
        !["sequence", "id", "subset"]
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n))
    };
    header
        .names()
        .iter()
        .find(other)
        .cloned()
        .unwrap_or_else(|| VALUE_COLUMN.into())
}

/// One row: its sequence as written, its value and its subset, if the table
/// has that column.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measured<'a> {
    /// The bases as written.
    pub sequence: &'a str,
    /// The measurement (finite).
    pub value: f32,
    /// The `subset` column's field.
    pub subset: Option<&'a str>,
}

/// Where a table's fields are: DREAM lines until a header says otherwise.
#[derive(Clone, Debug)]
struct Columns {
    sequence: usize,
    value: usize,
    value_name: String,
    subset: Option<usize>,
    separator: char,
}

/// Why a line gave no row.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MeasurementError {
    /// The header lacks a column the table needs: nothing can be read.
    #[error("header has no {missing:?} column (its columns: {})", columns.join(", "))]
    Header {
        /// The column asked for.
        missing: String,
        /// The header's names.
        columns: Vec<String>,
    },
    /// A row that cannot be read (the rest of the table can).
    #[error("{0}")]
    Row(String),
}

/// Reads a table's lines one at a time (files of any size stream through).
#[derive(Clone, Debug)]
pub struct MeasurementReader {
    columns: Columns,
    header: Option<Header>,
}

impl MeasurementReader {
    /// A reader taking values from the column named `value` when the table
    /// has a header ([`VALUE_COLUMN`] is the usual one), from the second
    /// field of DREAM lines otherwise.
    pub fn new(value: &str) -> Self {
        MeasurementReader {
            columns: Columns {
                sequence: 0,
                value: 1,
                value_name: value.to_string(),
                subset: None,
                separator: '\t',
            },
            header: None,
        }
    }

    /// A reader of the rows under `header`: sequences from its column named
    /// `sequence`, values from `value`, subsets from `subset` if it has one.
    pub fn of_header(
        header: Header,
        sequence: &str,
        value: &str,
    ) -> Result<Self, MeasurementError> {
        let need = |name: &str| {
            header.column(name).ok_or_else(|| MeasurementError::Header {
                missing: name.to_string(),
                columns: header.names().to_vec(),
            })
        };
        Ok(MeasurementReader {
            columns: Columns {
                sequence: need(sequence)?,
                value: need(value)?,
                value_name: value.to_string(),
                subset: header.column("subset"),
                separator: header.separator,
            },
            header: Some(header),
        })
    }

    /// The header, once line 1 was one.
    pub fn header(&self) -> Option<&Header> {
        self.header.as_ref()
    }

    /// Feeds line `number` (1-based, without its line break): its row, or
    /// `None` for a blank line or the header.
    pub fn line<'a>(
        &mut self,
        number: usize,
        line: &'a str,
    ) -> Result<Option<Measured<'a>>, MeasurementError> {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            return Ok(None);
        }
        if number == 1
            && let Some(header) = Header::detect(line)
        {
            *self = Self::of_header(header, "sequence", &self.columns.value_name)?;
            return Ok(None);
        }
        self.row(line).map(Some).map_err(MeasurementError::Row)
    }

    /// A line of the table read as a row (its sequence unchecked: that is
    /// the encoder's business).
    pub fn row<'a>(&self, line: &'a str) -> Result<Measured<'a>, String> {
        let columns = &self.columns;
        let fields: Vec<&str> = line.split(columns.separator).collect();
        let field = |i: usize, name: &str| {
            fields
                .get(i)
                .map(|f| f.trim())
                .filter(|f| !f.is_empty())
                .ok_or_else(|| format!("missing {name} field"))
        };
        let name = columns.value_name.as_str();
        let sequence = field(columns.sequence, "sequence")?;
        let text = field(columns.value, name)?;
        let subset = columns.subset.map(|i| field(i, "subset")).transpose()?;
        let value: f32 = text
            .parse()
            .map_err(|_| format!("{name} {text:?} is not a number"))?;
        if !value.is_finite() {
            return Err(format!("{name} {text:?} is not finite"));
        }
        Ok(Measured {
            sequence,
            value,
            subset,
        })
    }
}

/// A whole table read for a model of `seq_len` bases: what the page's Train
/// tab shows before it trains.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct MeasurementTable {
    /// The header's columns (empty for DREAM lines).
    pub columns: Vec<String>,
    /// Sequences (upper case), one a row.
    pub sequences: Vec<String>,
    /// Their values.
    pub values: Vec<f32>,
    /// The line of each row.
    pub lines: Vec<usize>,
    /// Lines refused, with why (bad fields, bases, sequences too long).
    pub problems: Vec<LineError>,
}

impl MeasurementTable {
    /// Reads `text` with values from the column `value`; every row a model of
    /// `seq_len` bases cannot read is a problem of its line. A header without
    /// the columns asked for is an error of the whole table.
    pub fn parse(text: &str, value: &str, seq_len: usize) -> Result<Self, MeasurementError> {
        let mut reader = MeasurementReader::new(value);
        let mut table = MeasurementTable::default();
        let mut codes = Vec::with_capacity(seq_len);
        for (i, line) in text.lines().enumerate() {
            let number = i + 1;
            let problem = match reader.line(number, line) {
                Ok(None) => continue,
                Ok(Some(row)) => match checked(row.sequence, seq_len, &mut codes) {
                    Ok(()) => {
                        table.sequences.push(row.sequence.to_ascii_uppercase());
                        table.values.push(row.value);
                        table.lines.push(number);
                        continue;
                    }
                    Err(e) => e.to_string(),
                },
                Err(MeasurementError::Row(problem)) => problem,
                Err(header) => return Err(header),
            };
            table.problems.push(LineError {
                line: number,
                problem,
            });
        }
        table.columns = reader
            .header()
            .map(|h| h.names().to_vec())
            .unwrap_or_default();
        Ok(table)
    }

    /// Rows.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no row was read.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Each row's side of `--holdout percent`: true when held out.
    pub fn held_out(&self, percent: u32) -> Vec<bool> {
        self.sequences
            .iter()
            .map(|s| held_out(s.as_bytes(), percent))
            .collect()
    }
}

/// The sequence's codes in `codes`, when a model of `seq_len` bases can read it.
fn checked(sequence: &str, seq_len: usize, codes: &mut Vec<u8>) -> Result<(), EncodeError> {
    codes.clear();
    encode_into(sequence, codes)?;
    fits(codes, seq_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dream_lines_and_tables_with_a_picked_value_column() {
        let table = MeasurementTable::parse("acgt\t1.5\n\nCCGG\t-2\n", VALUE_COLUMN, 10).unwrap();
        assert_eq!(table.sequences, ["ACGT", "CCGG"]);
        assert_eq!(table.values, [1.5, -2.0]);
        assert_eq!(table.lines, [1, 3]);
        assert!(table.columns.is_empty());
        let text = "id,sequence,yfp,rfp\na,ACG,1,2\nb,TTT,3,4\n";
        let table = MeasurementTable::parse(text, "RFP", 10).unwrap();
        assert_eq!(table.values, [2.0, 4.0]);
        assert_eq!(table.columns, ["id", "sequence", "yfp", "rfp"]);
    }

    #[test]
    fn bad_rows_are_problems_of_their_lines_and_the_rest_is_read() {
        let text = "ACGT\t1\nACXT\t2\nACGT\thigh\nACGT\nACGTACGTACGT\t1\nAC\tinf\nGG\t0\n";
        let table = MeasurementTable::parse(text, VALUE_COLUMN, 10).unwrap();
        assert_eq!(table.sequences, ["ACGT", "GG"]);
        let problems: Vec<String> = table.problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            problems,
            [
                "line 2: invalid base 'X' at position 3 (expected A, C, G, T or N)",
                "line 3: expression \"high\" is not a number",
                "line 4: missing expression field",
                "line 5: sequence of 12 bases is longer than the model's 10",
                "line 6: expression \"inf\" is not finite",
            ]
        );
    }

    #[test]
    fn the_value_column_offered_by_a_table() {
        assert_eq!(value_column("ACGT\t1\n"), "expression");
        assert_eq!(value_column("id,Expression,sequence\n"), "expression");
        assert_eq!(value_column("ID\tsequence\tsubset\tYFP\tRFP\n"), "YFP");
        assert_eq!(value_column("sequence\n"), "expression");
    }

    #[test]
    fn a_header_without_the_value_column_names_the_columns_it_has() {
        let err =
            MeasurementTable::parse("sequence\tyfp\nACGT\t1\n", VALUE_COLUMN, 10).unwrap_err();
        assert_eq!(
            err.to_string(),
            "header has no \"expression\" column (its columns: sequence, yfp)"
        );
    }

    #[test]
    fn holdout_follows_the_sequence() {
        // zlib.crc32(s) % 100 in Python: ACGT 58, TTTT 32.
        assert!(held_out(b"ACGT", 59) && !held_out(b"ACGT", 58));
        assert!(held_out(b"TTTT", 33) && !held_out(b"TTTT", 32));
        let table = MeasurementTable::parse("acgt\t1\nTTTT\t2\n", VALUE_COLUMN, 10).unwrap();
        assert_eq!(table.held_out(40), [false, true]);
    }
}
