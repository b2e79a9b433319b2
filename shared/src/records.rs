//! Sequences to score from text: the one parser of `promoscope predict` and
//! the page.
//!
//! Formats, told apart line by line (blank lines and lines starting with `#`
//! are skipped everywhere):
//! - FASTA: a `>name` line starts a record named by its first word; the
//!   lines up to the next `>` are its sequence.
//! - A header naming a `sequence` column (tab- or comma-separated as
//!   [`Header`] reads it, any order, optionally an `id` column) as the first
//!   line: then every line is a row of that table.
//! - Otherwise one record a line: `sequence`, `sequence<TAB>anything` (a
//!   DREAM line), or `id<TAB>sequence` when the first field is no sequence and
//!   the second is; commas separate as tabs do.
//!
//! Records without a name are named `line<N>` after their line. Whether a
//! record's sequence suits a model is [`crate::encoding::encode_for`]'s
//! business, not the parser's.

use std::fmt;

use crate::encoding::code_of;

/// A sequence and where it came from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Record {
    /// FASTA name, `id` column, first field, or `line<N>`.
    pub id: String,
    /// The bases as written.
    pub sequence: String,
    /// The 1-based line it starts on.
    pub line: usize,
}

/// A line that holds no record.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct LineError {
    /// Its 1-based number.
    pub line: usize,
    /// What is wrong with it.
    pub problem: String,
}

/// A table's header line: its column names and the separator of its rows.
///
/// The one rule for the header of every table promoscope reads (sequences
/// here; training data and pairs in the trainer): a line holding a tab is
/// tab-separated, any other comma-separated, and names are trimmed and
/// compared in any case. Where a table's first line may be a row already,
/// it is a header when it names a `sequence` column ([`Header::detect`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    names: Vec<String>,
    /// What separates the fields of the header and of each row.
    pub separator: char,
}

impl Header {
    /// A line read as a header.
    pub fn read(line: &str) -> Self {
        let separator = if line.contains('\t') { '\t' } else { ',' };
        Header {
            names: line
                .split(separator)
                .map(|c| c.trim().to_string())
                .collect(),
            separator,
        }
    }

    /// A first line read as a header when it names a `sequence` column;
    /// `None` when it is a row.
    pub fn detect(line: &str) -> Option<Self> {
        let header = Self::read(line);
        header.column("sequence").map(|_| header)
    }

    /// The column names, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The index of the column named `name` (in any case), if there is one.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|c| c.eq_ignore_ascii_case(name))
    }
}

/// Where a table's fields are, once its header was read.
#[derive(Clone, Copy, Debug)]
struct Columns {
    sequence: usize,
    id: Option<usize>,
    separator: char,
}

/// A FASTA record being read: its header line, name and bases so far.
#[derive(Debug)]
struct Open {
    line: usize,
    id: String,
    sequence: String,
}

/// Reads records from lines fed one at a time, so files of any size stream
/// through it (`promoscope predict`) as well as pasted text ([`parse`]).
#[derive(Debug, Default)]
pub struct Parser {
    /// A content line was seen: a header can only be the first.
    started: bool,
    columns: Option<Columns>,
    fasta: Option<Open>,
}

/// Whether a field is a sequence: letters A, C, G, T or N only (either case).
fn is_sequence(field: &str) -> bool {
    !field.is_empty() && field.chars().all(|c| code_of(c).is_some())
}

impl Parser {
    /// A parser at the start of a text.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds line `number` (1-based, without its line break); returns the
    /// record it completes, if any. A FASTA record is complete at the next
    /// header or at [`Parser::finish`].
    pub fn line(&mut self, number: usize, line: &str) -> Option<Result<Record, LineError>> {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let first = !self.started;
        self.started = true;
        if let Some(name) = line.strip_prefix('>') {
            let done = self.finish();
            self.fasta = Some(Open {
                line: number,
                id: name.split_whitespace().next().unwrap_or("").to_string(),
                sequence: String::new(),
            });
            return done;
        }
        if let Some(open) = &mut self.fasta {
            open.sequence.push_str(line);
            return None;
        }
        if first && let Some(columns) = header(line) {
            self.columns = Some(columns);
            return None;
        }
        Some(self.row(number, line))
    }

    /// Ends the text: the last FASTA record, if one is open.
    pub fn finish(&mut self) -> Option<Result<Record, LineError>> {
        let Open { line, id, sequence } = self.fasta.take()?;
        let id = if id.is_empty() {
            format!("line{line}")
        } else {
            id
        };
        Some(if sequence.is_empty() {
            Err(LineError {
                line,
                problem: format!("FASTA record {id:?} has no sequence"),
            })
        } else {
            Ok(Record { id, sequence, line })
        })
    }

    /// A line of a table, or of one record a line.
    fn row(&self, number: usize, line: &str) -> Result<Record, LineError> {
        let (id, sequence) = match self.columns {
            Some(columns) => {
                let fields: Vec<&str> = line.split(columns.separator).map(str::trim).collect();
                let field = |i: usize| fields.get(i).copied().unwrap_or("");
                (columns.id.map_or("", field), field(columns.sequence))
            }
            None => {
                let mut fields = line.split(['\t', ',']).map(str::trim);
                let first = fields.next().unwrap_or("");
                match fields.next() {
                    Some(second) if !is_sequence(first) && is_sequence(second) => (first, second),
                    // Anything else is read as a sequence: the encoder names its bad base.
                    _ => ("", first),
                }
            }
        };
        if sequence.is_empty() {
            return Err(LineError {
                line: number,
                problem: "missing sequence field".into(),
            });
        }
        Ok(Record {
            id: match id {
                "" => format!("line{number}"),
                id => id.to_string(),
            },
            sequence: sequence.to_string(),
            line: number,
        })
    }
}

/// The columns of a header line ([`Header::detect`]), or `None` for a line
/// that is no header.
fn header(line: &str) -> Option<Columns> {
    let header = Header::detect(line)?;
    Some(Columns {
        sequence: header.column("sequence")?,
        id: header.column("id"),
        separator: header.separator,
    })
}

/// Every record of a text, and the lines that hold none, in line order.
pub fn parse(text: &str) -> (Vec<Record>, Vec<LineError>) {
    let mut parser = Parser::new();
    let mut records = Vec::new();
    let mut problems = Vec::new();
    let lines = text.lines().enumerate();
    let items: Vec<_> = lines
        .filter_map(|(i, line)| parser.line(i + 1, line))
        .collect();
    for item in items.into_iter().chain(parser.finish()) {
        match item {
            Ok(record) => records.push(record),
            Err(problem) => problems.push(problem),
        }
    }
    (records, problems)
}

impl fmt::Display for Record {
    /// The record as a FASTA entry: what [`parse`] reads back the same.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, ">{}\n{}", self.id, self.sequence)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Records as `(id, sequence, line)` and problems as `(line, problem)`.
    type Expected = (
        &'static [(&'static str, &'static str, usize)],
        &'static [(usize, &'static str)],
    );

    /// Inputs and what they hold: the table the CLI and the page share.
    const CASES: &[(&str, Expected)] = &[
        // One sequence a line; blank lines count.
        (
            "ACGT\n\nttn\n",
            (&[("line1", "ACGT", 1), ("line3", "ttn", 3)], &[]),
        ),
        // DREAM lines: the label is not part of the sequence.
        (
            "ACGT\t1.5\nCCGG\t2\n",
            (&[("line1", "ACGT", 1), ("line2", "CCGG", 2)], &[]),
        ),
        // Comments and Windows line ends.
        (
            "# my promoters\r\nACGT\r\n#\r\nGG\r\n",
            (&[("line2", "ACGT", 2), ("line4", "GG", 4)], &[]),
        ),
        // id<TAB>sequence and id,sequence without a header.
        (
            "seq1\tACGT\nseq2,CCNN\n",
            (&[("seq1", "ACGT", 1), ("seq2", "CCNN", 2)], &[]),
        ),
        // A bad base is read as a sequence, for the encoder to name.
        ("ACZT\t3\n", (&[("line1", "ACZT", 1)], &[])),
        // A table with a header, any column order, a row without a sequence.
        (
            "id,sequence\nx,ACG\ny,\n",
            (&[("x", "ACG", 2)], &[(3, "missing sequence field")]),
        ),
        (
            "expression\tSequence\n3\tAC\n",
            (&[("line2", "AC", 2)], &[]),
        ),
        // FASTA over several lines, a record with no sequence, an unnamed one.
        (
            ">a some description\nAC\nGT\n>b\n>\nN\n",
            (
                &[("a", "ACGT", 1), ("line5", "N", 5)],
                &[(4, "FASTA record \"b\" has no sequence")],
            ),
        ),
        // A header is only a header as the first content line.
        (
            "ACGT\nid,sequence\n",
            (&[("line1", "ACGT", 1), ("line2", "id", 2)], &[]),
        ),
        // Empty fields: no id is the line's, no sequence is a problem.
        (
            ",ACGT\n,,\n",
            (&[("line1", "ACGT", 1)], &[(2, "missing sequence field")]),
        ),
        ("", (&[], &[])),
    ];

    #[test]
    fn table_of_inputs_and_their_records() {
        for (text, (records, problems)) in CASES {
            let (got, got_problems) = parse(text);
            let got: Vec<(&str, &str, usize)> = got
                .iter()
                .map(|r| (r.id.as_str(), r.sequence.as_str(), r.line))
                .collect();
            assert_eq!(got, *records, "{text:?}");
            let got_problems: Vec<(usize, &str)> = got_problems
                .iter()
                .map(|p| (p.line, p.problem.as_str()))
                .collect();
            assert_eq!(got_problems, *problems, "{text:?}");
        }
    }

    #[test]
    fn a_header_splits_on_its_one_separator() {
        // A tab makes the line tab-separated: its commas are part of names.
        let header = Header::read("ID,Sequence\t x ");
        assert_eq!(header.separator, '\t');
        assert_eq!(header.column("id,sequence"), Some(0));
        assert_eq!(header.column("x"), Some(1));
        let header = Header::detect("id, SEQUENCE ,expression").unwrap();
        assert_eq!(header.separator, ',');
        assert_eq!(header.column("sequence"), Some(1));
        assert_eq!(header.column("subset"), None);
        assert_eq!(Header::detect("ACGT,sequence\t1.5"), None);
    }

    #[test]
    fn problems_read_as_line_and_reason() {
        let (_, problems) = parse(">only\n");
        assert_eq!(
            problems[0].to_string(),
            "line 1: FASTA record \"only\" has no sequence"
        );
    }

    proptest! {
        #[test]
        fn any_text_parses_or_names_a_line(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let text = String::from_utf8_lossy(&bytes);
            let lines = text.lines().count();
            let (records, problems) = parse(&text);
            for record in &records {
                prop_assert!((1..=lines).contains(&record.line));
                prop_assert!(!record.sequence.is_empty());
            }
            for problem in &problems {
                prop_assert!((1..=lines).contains(&problem.line));
            }
        }

        #[test]
        fn fasta_written_out_reads_back_the_same(
            entries in proptest::collection::vec(("[A-Za-z0-9_.]{1,12}", "[ACGTNacgtn]{1,90}"), 0..20)
        ) {
            let records: Vec<Record> = entries
                .iter()
                .map(|(id, sequence)| Record { id: id.clone(), sequence: sequence.clone(), line: 0 })
                .collect();
            let text: String = records.iter().map(Record::to_string).collect();
            let (back, problems) = parse(&text);
            prop_assert!(problems.is_empty());
            let pairs = |r: &[Record]| -> Vec<(String, String)> {
                r.iter().map(|r| (r.id.clone(), r.sequence.clone())).collect()
            };
            prop_assert_eq!(pairs(&back), pairs(&records));
        }

        #[test]
        fn one_sequence_a_line_reads_back_the_same(
            sequences in proptest::collection::vec("[ACGTNacgtn]{1,90}", 0..20)
        ) {
            let text = sequences.join("\n");
            let (back, problems) = parse(&text);
            prop_assert!(problems.is_empty());
            let got: Vec<&str> = back.iter().map(|r| r.sequence.as_str()).collect();
            prop_assert_eq!(got, sequences.iter().map(String::as_str).collect::<Vec<_>>());
        }
    }
}
