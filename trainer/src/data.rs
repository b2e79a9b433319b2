//! Training data: DREAM lines (`SEQUENCE<TAB>EXPRESSION`) or a TSV/CSV with a
//! `sequence,expression` header, plain or gzip, stored one byte per base.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use flate2::read::MultiGzDecoder;
use promoscope_model::encoding::{base_of, encode_into, fits, write_one_hot};
pub use promoscope_model::measurements::held_out;
use promoscope_model::measurements::{MeasurementError, MeasurementReader, VALUE_COLUMN};
use promoscope_model::records::{Header, LineError, Parser, Record};

/// Sequences as base codes (`seq_len` bytes a row, short rows padded with
/// [`PAD`]) and their measured expression.
#[derive(Clone, Debug, Default)]
pub struct Dataset {
    /// Row length: the model's input length.
    pub seq_len: usize,
    codes: Vec<u8>,
    /// Measured expression per row.
    pub labels: Vec<f32>,
    /// Test subset per row (`high`, `yeast`, ...), when the file has a `subset` column.
    pub subsets: Vec<String>,
}

/// Code of padding positions (one-hot zeros, like N).
pub const PAD: u8 = 5;

/// What reading skipped.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReadReport {
    /// Sequences longer than the model, dropped as the seed did.
    pub too_long: usize,
    /// Malformed lines skipped under `--skip-bad-lines`: `(line, problem)`.
    pub bad_lines: Vec<(usize, String)>,
}

impl Dataset {
    /// Rows.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Splits off the last `n` rows (the seed's validation set).
    pub fn split_tail(mut self, n: usize) -> (Dataset, Dataset) {
        let keep = self.len().saturating_sub(n);
        let tail = Dataset {
            seq_len: self.seq_len,
            codes: self.codes.split_off(keep * self.seq_len),
            labels: self.labels.split_off(keep),
            subsets: self.subsets.split_off(keep.min(self.subsets.len())),
        };
        (self, tail)
    }

    /// Splits off the held-out rows of `--holdout percent` ([`held_out`]):
    /// `(training, held out)`, each in file order.
    pub fn split_holdout(self, percent: u32) -> (Dataset, Dataset) {
        let empty = || Dataset {
            seq_len: self.seq_len,
            ..Dataset::default()
        };
        let (mut train, mut val) = (empty(), empty());
        let mut letters = Vec::with_capacity(self.seq_len);
        for (i, row) in self.codes.chunks_exact(self.seq_len).enumerate() {
            letters.clear();
            letters.extend(row.iter().filter(|&&c| c != PAD).map(|&c| base_of(c) as u8));
            let part = if held_out(&letters, percent) {
                &mut val
            } else {
                &mut train
            };
            part.push(row, self.labels[i], self.subsets.get(i).map(String::as_str));
        }
        (train, val)
    }

    /// Appends `other`'s rows (of the same row length) after these.
    pub fn append(&mut self, other: Dataset) {
        assert_eq!(self.seq_len, other.seq_len, "rows of one length");
        if self.subsets.len() == self.len() && other.subsets.len() == other.len() {
            self.subsets.extend(other.subsets);
        } else {
            self.subsets.clear();
        }
        self.codes.extend(other.codes);
        self.labels.extend(other.labels);
    }

    /// The rows `indices` as a one-hot batch `[n, seq_len, 4]` and labels `[n, 1]`.
    pub fn batch(&self, indices: &[usize], device: &Device) -> (Tensor<3>, Tensor<2>) {
        let row = self.seq_len * 4;
        let mut x = vec![0.0f32; indices.len() * row];
        for (&i, out) in indices.iter().zip(x.chunks_exact_mut(row)) {
            let codes = &self.codes[i * self.seq_len..(i + 1) * self.seq_len];
            write_one_hot(codes, self.seq_len, out).expect("rows fit by construction");
        }
        let y: Vec<f32> = indices.iter().map(|&i| self.labels[i]).collect();
        (
            Tensor::from_data(TensorData::new(x, [indices.len(), self.seq_len, 4]), device),
            Tensor::from_data(TensorData::new(y, [indices.len(), 1]), device),
        )
    }

    fn push(&mut self, codes: &[u8], label: f32, subset: Option<&str>) {
        if let Some(subset) = subset {
            self.subsets.push(subset.to_string());
        }
        self.codes.extend_from_slice(codes);
        self.codes
            .extend(std::iter::repeat_n(PAD, self.seq_len - codes.len()));
        self.labels.push(label);
    }
}

/// Opens `path` (`-` for stdin), decompressing `.gz`.
pub fn open(path: &Path) -> Result<Box<dyn BufRead>> {
    let raw: Box<dyn Read> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(File::open(path).with_context(|| format!("cannot open {}", path.display()))?)
    };
    let gz = path.extension().is_some_and(|e| e == "gz");
    Ok(if gz {
        Box::new(BufReader::new(MultiGzDecoder::new(raw)))
    } else {
        Box::new(BufReader::new(raw))
    })
}

/// Reads a training file ([`MeasurementReader`]: the page's reader too). A
/// malformed line is an error naming file and line, unless `skip_bad_lines`,
/// which skips it and reports it.
pub fn read(path: &Path, seq_len: usize, skip_bad_lines: bool) -> Result<(Dataset, ReadReport)> {
    let mut reader = open(path)?;
    let mut data = Dataset {
        seq_len,
        ..Dataset::default()
    };
    let mut report = ReadReport::default();
    let mut rows = MeasurementReader::new(VALUE_COLUMN);
    // One line buffer and one code buffer for the whole file: no allocation a line.
    let mut line = String::new();
    let mut codes = Vec::with_capacity(seq_len);
    for number in 1.. {
        line.clear();
        let read = reader
            .read_line(&mut line)
            .with_context(|| format!("{}:{number}: cannot read", path.display()))?;
        if read == 0 {
            break;
        }
        let row = match rows.line(number, line.trim_end_matches('\n')) {
            Ok(None) => continue,
            Ok(Some(row)) => {
                codes.clear();
                encode_into(row.sequence, &mut codes)
                    .map(|()| row)
                    .map_err(|e| e.to_string())
            }
            Err(MeasurementError::Row(problem)) => Err(problem),
            Err(header) => bail!("{}:{number}: {header}", path.display()),
        };
        match row {
            Ok(..) if fits(&codes, seq_len).is_err() => report.too_long += 1,
            Ok(row) => data.push(&codes, row.value, row.subset),
            Err(problem) if skip_bad_lines => report.bad_lines.push((number, problem)),
            Err(problem) => bail!("{}:{number}: {problem}", path.display()),
        }
    }
    Ok((data, report))
}

/// Sequence pairs (the DREAM SNV and motif subsets): row i of `alt` pairs with
/// row i of `reference`; each has its `subset`.
#[derive(Debug)]
pub struct Pairs {
    /// Alternative sequences and their measurements.
    pub alt: Dataset,
    /// Reference sequences and their measurements.
    pub reference: Dataset,
}

/// Reads a pairs file: a TSV/CSV with columns `alt_sequence, ref_sequence,
/// alt_expression, ref_expression, subset` (any order).
pub fn read_pairs(path: &Path, seq_len: usize) -> Result<Pairs> {
    let mut lines = open(path)?.lines().enumerate();
    let header = match lines.next() {
        Some((_, line)) => line.with_context(|| format!("{}:1: cannot read", path.display()))?,
        None => bail!("{}: empty pairs file", path.display()),
    };
    let header = Header::read(&header);
    let side = |prefix: &str| {
        if header.column("subset").is_none() {
            bail!(
                "{}:1: pairs header has no \"subset\" column",
                path.display()
            );
        }
        let (sequence, value) = (format!("{prefix}_sequence"), format!("{prefix}_expression"));
        MeasurementReader::of_header(header.clone(), &sequence, &value)
            .with_context(|| format!("{}:1: pairs", path.display()))
    };
    let sides = [side("alt")?, side("ref")?];
    let mut codes = Vec::with_capacity(seq_len);
    let empty = || Dataset {
        seq_len,
        ..Dataset::default()
    };
    let mut pairs = Pairs {
        alt: empty(),
        reference: empty(),
    };
    for (i, line) in lines {
        let number = i + 1;
        let line = line.with_context(|| format!("{}:{number}: cannot read", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        for (reader, data) in sides.iter().zip([&mut pairs.alt, &mut pairs.reference]) {
            let located =
                |problem: String| anyhow::anyhow!("{}:{number}: {problem}", path.display());
            let row = reader.row(line.trim_end_matches('\r')).map_err(located)?;
            codes.clear();
            encode_into(row.sequence, &mut codes)
                .and_then(|()| fits(&codes, seq_len))
                .map_err(|e| located(e.to_string()))?;
            data.push(&codes, row.value, row.subset);
        }
    }
    Ok(pairs)
}

/// Streams the records of a file (`-` for stdin, `.gz` decompressed) through
/// the shared parser ([`records::Parser`], the page's too), naming the file
/// in every error.
pub struct SequenceReader {
    lines: std::iter::Enumerate<std::io::Lines<Box<dyn BufRead>>>,
    source: String,
    parser: Parser,
    done: bool,
}

impl SequenceReader {
    /// Opens `path`.
    pub fn open(path: &Path) -> Result<Self> {
        Ok(SequenceReader {
            lines: open(path)?.lines().enumerate(),
            source: path.display().to_string(),
            parser: Parser::new(),
            done: false,
        })
    }

    fn located(&self, item: Result<Record, LineError>) -> Result<Record> {
        item.map_err(|e| anyhow::anyhow!("{}:{}: {}", self.source, e.line, e.problem))
    }
}

impl Iterator for SequenceReader {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let Some((i, line)) = self.lines.next() else {
                self.done = true;
                let last = self.parser.finish()?;
                return Some(self.located(last));
            };
            let line = match line {
                Ok(line) => line,
                Err(e) => {
                    self.done = true;
                    let source = &self.source;
                    return Some(Err(anyhow::anyhow!("{source}:{}: cannot read: {e}", i + 1)));
                }
            };
            if let Some(item) = self.parser.line(i + 1, &line) {
                return Some(self.located(item));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use promoscope_model::encoding::one_hot;

    use super::*;

    fn file(contents: &[u8], name: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::File::create(&path)
            .unwrap()
            .write_all(contents)
            .unwrap();
        (dir, path)
    }

    #[test]
    fn reads_dream_lines_drops_long_and_pads_short() {
        let (_dir, path) = file(b"ACGT\t1.5\nACGTACGT\t2\nAN\t3\n", "d.txt");
        let (data, report) = read(&path, 6, false).unwrap();
        assert_eq!(data.labels, [1.5, 3.0]);
        assert_eq!(report.too_long, 1);
        let (x, y) = data.batch(&[1], &Device::flex());
        let x = x.into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(&x[..8], [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        assert!(x[8..].iter().all(|v| *v == 0.0));
        assert_eq!(y.into_data().try_to_vec::<f32>().unwrap(), [3.0]);
    }

    #[test]
    fn reads_csv_with_header_and_gzip() {
        use flate2::{Compression, write::GzEncoder};
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(b"id,expression,sequence\nx,4.25,ACG\n")
            .unwrap();
        let (_dir, path) = file(&gz.finish().unwrap(), "d.csv.gz");
        let (data, _) = read(&path, 5, false).unwrap();
        assert_eq!(data.labels, [4.25]);
    }

    #[test]
    fn malformed_lines_name_file_line_and_problem() {
        let cases: [(&[u8], &str); 4] = [
            (
                b"ACGT\t1\nACXT\t2\n",
                "d.txt:2: invalid base 'X' at position 3",
            ),
            (b"ACGT\n", "d.txt:1: missing expression field"),
            (
                b"ACGT\t1\n\nACGT\thigh\n",
                "d.txt:3: expression \"high\" is not a number",
            ),
            (b"ACGT\tNaN\n", "d.txt:1: expression \"NaN\" is not finite"),
        ];
        for (contents, expected) in cases {
            let (_dir, path) = file(contents, "d.txt");
            let err = format!("{:#}", read(&path, 10, false).unwrap_err());
            assert!(err.contains(expected), "{err} vs {expected}");
        }
    }

    #[test]
    fn skip_bad_lines_reports_them() {
        let (_dir, path) = file(b"ACGT\t1\nAC-T\t2\nACGT\tinf\nAAAA\t0\n", "d.txt");
        let (data, report) = read(&path, 10, true).unwrap();
        assert_eq!(data.labels, [1.0, 0.0]);
        let lines: Vec<usize> = report.bad_lines.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [2, 3]);
    }

    #[test]
    fn sequence_files_go_through_the_shared_parser_naming_the_file() {
        // The formats are `records`' table test; here: a file, gzip, its name.
        let read_all = |contents: &[u8], name: &str| {
            let (_dir, path) = file(contents, name);
            SequenceReader::open(&path)
                .unwrap()
                .collect::<Result<Vec<_>>>()
        };
        let text = b">a first\nACG\nTT\n>b\nN\n";
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(text).unwrap();
        for (contents, name) in [(text.to_vec(), "s.fa"), (gz.finish().unwrap(), "s.fa.gz")] {
            let fasta = read_all(&contents, name).unwrap();
            let pairs: Vec<(&str, &str, usize)> = fasta
                .iter()
                .map(|r| (r.id.as_str(), r.sequence.as_str(), r.line))
                .collect();
            assert_eq!(pairs, [("a", "ACGTT", 1), ("b", "N", 4)]);
        }
        let err = read_all(b">a\n>b\nAC\n", "s.txt").unwrap_err();
        assert!(
            err.to_string()
                .ends_with("s.txt:1: FASTA record \"a\" has no sequence"),
            "{err}"
        );
        let err = read_all(b"AC\n\xff\xfe\n", "bin.txt").unwrap_err();
        assert!(err.to_string().contains("bin.txt:2: cannot read"), "{err}");
    }

    #[test]
    fn pairs_are_read_side_by_side_and_checked() {
        let (_dir, path) = file(
            b"subset\tref_sequence\talt_sequence\tref_expression\talt_expression\nsnv\tAC\tAG\t1\t2.5\n",
            "p.tsv",
        );
        let pairs = read_pairs(&path, 4).unwrap();
        assert_eq!(
            (pairs.alt.labels, pairs.reference.labels),
            (vec![2.5], vec![1.0])
        );
        assert_eq!(pairs.alt.subsets, ["snv"]);
        let header = "alt_sequence,ref_sequence,alt_expression,ref_expression,subset\n";
        for (row, expected) in [
            (
                "AC,AC,x,1,snv",
                "p.csv:2: alt_expression \"x\" is not a number",
            ),
            (
                "AC,ACGTA,1,1,snv",
                "p.csv:2: sequence of 5 bases is longer than the model's 4",
            ),
        ] {
            let (_dir, path) = file(format!("{header}{row}\n").as_bytes(), "p.csv");
            let err = format!("{:#}", read_pairs(&path, 4).unwrap_err());
            assert!(err.ends_with(expected), "{err}");
        }
    }

    #[test]
    fn holdout_follows_the_sequence_not_the_file_order() {
        // zlib.crc32(s) % 100 in Python: ACGT 58, TTTT 32, GATTACA 65, CCNA 27,
        // AAAA 37, GGGG 80 (scripts/baseline_kmer.py applies the same rule).
        let (_dir, path) = file(
            b"ACGT\t1\nttTT\t2\nGATTACA\t3\nccna\t4\nAAAA\t5\nGGGG\t6\n",
            "d.txt",
        );
        let (data, _) = read(&path, 8, false).unwrap();
        let (train, val) = data.clone().split_holdout(40);
        assert_eq!(val.labels, [2.0, 4.0, 5.0]);
        assert_eq!(train.labels, [1.0, 3.0, 6.0]);
        let (train, val) = data.split_holdout(60);
        assert_eq!((train.labels, val.labels.len()), (vec![3.0, 6.0], 4));
        // The rows keep their bases: the held-out one-hot equals the file's.
        let (x, _) = val.batch(&[1], &Device::flex());
        let expected = one_hot(&["TTTT"], 8).unwrap();
        assert_eq!(x.into_data(), expected);
    }

    #[test]
    fn split_tail_takes_the_last_rows() {
        let (_dir, path) = file(b"A\t1\nC\t2\nG\t3\n", "d.txt");
        let (data, _) = read(&path, 2, false).unwrap();
        let (train, val) = data.split_tail(1);
        assert_eq!((train.labels, val.labels), (vec![1.0, 2.0], vec![3.0]));
    }
}
