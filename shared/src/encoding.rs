//! DNA sequences: the bases and their codes, one-hot tensors, reverse
//! complements.
//!
//! A/C/G/T (either case) are channels 0..3, `N` is all zeros, and sequences are
//! right-padded with zeros to the model length. Anything else is an error.

use burn::prelude::*;

/// Why a sequence cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A character that is not A, C, G, T or N (either case).
    #[error("invalid base {base:?} at position {position} (expected A, C, G, T or N)")]
    InvalidBase {
        /// The character.
        base: char,
        /// Its 1-based position in the sequence.
        position: usize,
    },
    /// A sequence without bases.
    #[error("empty sequence")]
    Empty,
    /// The sequence does not fit the model.
    #[error("sequence of {length} bases is longer than the model's {max}")]
    TooLong {
        /// Its length.
        length: usize,
        /// The model's input length.
        max: usize,
    },
    /// A substitution that does not fit the sequence (its base is not there,
    /// or it brings in the same base or one that is not A, C, G or T).
    #[error("substitution {0} does not fit the sequence")]
    Substitution(String),
}

// The bases and their codes: the one place the alphabet is spelled out.

/// The four bases in channel order: base `BASES[c]` has code `c`.
pub const BASES: [char; 4] = ['A', 'C', 'G', 'T'];

/// Code of `N` in [`encode`]'s output.
pub const CODE_N: u8 = 4;

/// Marks a byte that is no base in [`CODES`].
const INVALID: u8 = u8::MAX;

/// Base code of every byte: [`BASES`] (either case) → 0..3, N → [`CODE_N`].
const CODES: [u8; 256] = {
    let mut table = [INVALID; 256];
    // In code order: the bases, then N.
    let letters = [BASES[0], BASES[1], BASES[2], BASES[3], 'N'];
    let mut code = 0;
    while code < letters.len() {
        let base = letters[code] as u8;
        table[base as usize] = code as u8;
        table[base.to_ascii_lowercase() as usize] = code as u8;
        code += 1;
    }
    table
};

/// The code of a base: A, C, G, T (either case) → 0..3, N → [`CODE_N`];
/// `None` for anything else, which no caller may read as some base (each
/// names it in its own error).
pub fn code_of(base: char) -> Option<u8> {
    let code = CODES[usize::from(u8::try_from(base).ok()?)];
    (code != INVALID).then_some(code)
}

/// The base of a code: [`BASES`] for 0..3, `N` for [`CODE_N`].
///
/// # Panics
/// On any other code ([`encode`] gives none).
pub fn base_of(code: u8) -> char {
    match BASES.get(usize::from(code)) {
        Some(&base) => base,
        None if code == CODE_N => 'N',
        None => panic!("no base has code {code}"),
    }
}

/// Codes back to their bases (upper case): [`encode`]'s inverse.
pub fn decode(codes: &[u8]) -> String {
    codes.iter().map(|&code| base_of(code)).collect()
}

/// The complement of a code: A ↔ T, C ↔ G (codes `c` ↔ `3 - c`); `N` stays `N`.
pub fn complement(code: u8) -> u8 {
    if code < CODE_N { 3 - code } else { code }
}

/// The complement of a base, its case kept; `N` and anything that is no
/// base stay as they are.
pub fn complement_base(base: char) -> char {
    match code_of(base) {
        Some(code) if code < CODE_N => {
            let complement = base_of(complement(code));
            if base.is_ascii_lowercase() {
                complement.to_ascii_lowercase()
            } else {
                complement
            }
        }
        _ => base,
    }
}

/// A sequence as base codes: A, C, G, T → 0..3, N → [`CODE_N`].
pub fn encode(sequence: &str) -> Result<Vec<u8>, EncodeError> {
    let mut codes = Vec::with_capacity(sequence.len());
    encode_into(sequence, &mut codes)?;
    Ok(codes)
}

/// The one rule for a sequence a model reading `length` positions scores (the
/// page, `predict`, `ism`, `one_hot`): at least one base, only A, C, G, T or N
/// (either case), at most `length` bases. Its codes as [`encode`]'s.
pub fn encode_for(sequence: &str, length: usize) -> Result<Vec<u8>, EncodeError> {
    if sequence.is_empty() {
        return Err(EncodeError::Empty);
    }
    let codes = encode(sequence)?;
    fits(&codes, length)?;
    Ok(codes)
}

/// The length half of [`encode_for`]'s rule, for codes already encoded (the
/// trainer's rows, [`write_one_hot`]): at most `length` of them.
pub fn fits(codes: &[u8], length: usize) -> Result<(), EncodeError> {
    if codes.len() > length {
        return Err(EncodeError::TooLong {
            length: codes.len(),
            max: length,
        });
    }
    Ok(())
}

/// [`encode`], appending to `out` (left as it was on error): the trainer's
/// hot path, one table lookup a base and no allocation.
pub fn encode_into(sequence: &str, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let start = out.len();
    out.extend(sequence.bytes().map(|b| CODES[b as usize]));
    if !out[start..].contains(&INVALID) {
        return Ok(());
    }
    out.truncate(start);
    // Report the first offending character (by character, not byte, position).
    let (i, base) = sequence
        .chars()
        .enumerate()
        .find(|&(_, c)| code_of(c).is_none())
        .expect("an invalid byte belongs to an invalid character");
    Err(EncodeError::InvalidBase {
        base,
        position: i + 1,
    })
}

/// Writes the one-hot rows of `codes` into `out` (`length × 4`, zero-filled
/// by the caller); `N` stays zero.
///
/// # Errors
/// [`EncodeError::TooLong`] if `codes` is longer than `length`.
pub fn write_one_hot(codes: &[u8], length: usize, out: &mut [f32]) -> Result<(), EncodeError> {
    fits(codes, length)?;
    for (row, &code) in out.chunks_exact_mut(4).zip(codes) {
        if code < CODE_N {
            row[code as usize] = 1.0;
        }
    }
    Ok(())
}

/// One-hot batch `[sequences, length, 4]` of the given sequences, each
/// passing [`encode_for`].
pub fn one_hot<S: AsRef<str>>(sequences: &[S], length: usize) -> Result<TensorData, EncodeError> {
    let mut values = vec![0.0f32; sequences.len() * length * 4];
    for (sequence, out) in sequences.iter().zip(values.chunks_exact_mut(length * 4)) {
        write_one_hot(&encode_for(sequence.as_ref(), length)?, length, out)?;
    }
    Ok(TensorData::new(values, [sequences.len(), length, 4]))
}

/// The constant sequences a model reads around the variable region: the
/// plasmid's, fixed in every measured sequence. A weights file names its own
/// in the metadata (`flank_5`, `flank_3`); without them, the DREAM 2022
/// library's ([`Flanks::dream`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flanks {
    /// Before the variable region.
    pub five: String,
    /// After it.
    pub three: String,
}

impl Flanks {
    /// The DREAM 2022 library's flanks (the seed model's training data).
    pub fn dream() -> Self {
        Flanks {
            five: "TGCATTTTTTTCACATC".into(),
            three: "GGTTACGGCTGTT".into(),
        }
    }

    /// A weights file's `flank_5` and `flank_3`, each falling back to DREAM's.
    pub fn of(metadata: &std::collections::BTreeMap<String, String>) -> Self {
        let dream = Self::dream();
        Flanks {
            five: metadata.get("flank_5").cloned().unwrap_or(dream.five),
            three: metadata.get("flank_3").cloned().unwrap_or(dream.three),
        }
    }

    /// Whether `sequence` starts with the 5' flank and ends with the 3' one
    /// (either case).
    pub fn surround(&self, sequence: &str) -> bool {
        self.starts(sequence)
            && self.ends(sequence)
            && sequence.len() >= self.five.len() + self.three.len()
    }

    /// `sequence` inside the flanks, when it has neither of them (a variable
    /// region alone) and fits a model of `length` positions with them; else
    /// `None`. A sequence with one flank is left as it is.
    pub fn add(&self, sequence: &str, length: usize) -> Option<String> {
        let flanked = sequence.len() + self.five.len() + self.three.len();
        (!self.starts(sequence)
            && !self.ends(sequence)
            && !sequence.is_empty()
            && flanked <= length)
            .then(|| format!("{}{sequence}{}", self.five, self.three))
    }

    /// Puts `sequence` inside the flanks when `add` and [`Flanks::add`]
    /// allows it, and says how it now stands to them: the one rule of
    /// `predict --add-flanks` and the page's box.
    pub fn place(&self, sequence: &mut String, length: usize, add: bool) -> Placement {
        if let Some(flanked) = add.then(|| self.add(sequence, length)).flatten() {
            *sequence = flanked;
            Placement::Added
        } else if self.surround(sequence) {
            Placement::Present
        } else {
            Placement::Missing
        }
    }

    fn starts(&self, sequence: &str) -> bool {
        let (s, f) = (sequence.as_bytes(), self.five.as_bytes());
        s.len() >= f.len() && s[..f.len()].eq_ignore_ascii_case(f)
    }

    fn ends(&self, sequence: &str) -> bool {
        let (s, f) = (sequence.as_bytes(), self.three.as_bytes());
        s.len() >= f.len() && s[s.len() - f.len()..].eq_ignore_ascii_case(f)
    }
}

/// How a sequence stands to a model's [`Flanks`] after [`Flanks::place`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    /// It holds both flanks.
    Present,
    /// It had neither and was put inside them.
    Added,
    /// It lacks one or both, and is scored as it is.
    Missing,
}

/// Reverse complement of a sequence; case is kept, N stays N.
pub fn reverse_complement(sequence: &str) -> Result<String, EncodeError> {
    encode(sequence)?;
    Ok(sequence.chars().rev().map(complement_base).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flanks_are_recognised_and_added_only_where_missing_and_fitting() {
        let flanks = Flanks::dream();
        let region = "ACGT".repeat(20);
        let full = format!("{}{region}{}", flanks.five, flanks.three);
        assert!(flanks.surround(&full));
        assert!(flanks.surround(&full.to_lowercase()));
        assert!(!flanks.surround(&region));
        assert_eq!(flanks.add(&region, 111).as_deref(), Some(full.as_str()));
        assert_eq!(flanks.add(&full, 111), None, "already flanked");
        assert_eq!(
            flanks.add(&"A".repeat(82), 111),
            None,
            "too long with flanks"
        );
        assert_eq!(flanks.add("", 111), None);
        let half = format!("{}{region}", flanks.five);
        assert!(!flanks.surround(&half));
        assert_eq!(flanks.add(&half, 111), None, "one flank: left as it is");
        let mut sequence = region.clone();
        assert_eq!(flanks.place(&mut sequence, 111, false), Placement::Missing);
        assert_eq!(flanks.place(&mut sequence, 111, true), Placement::Added);
        assert_eq!(sequence, full);
        assert_eq!(flanks.place(&mut sequence, 111, true), Placement::Present);
        let metadata = [("flank_5".to_string(), "GG".to_string())].into();
        let own = Flanks::of(&metadata);
        assert_eq!((own.five.as_str(), own.three), ("GG", flanks.three));
    }

    #[test]
    fn bases_codes_and_complements_agree() {
        for (code, &base) in BASES.iter().enumerate() {
            let code = code as u8;
            assert_eq!(code_of(base), Some(code));
            assert_eq!(code_of(base.to_ascii_lowercase()), Some(code));
            assert_eq!(base_of(code), base);
            assert_eq!(complement(complement(code)), code);
        }
        assert_eq!((code_of('N'), base_of(CODE_N)), (Some(CODE_N), 'N'));
        assert_eq!(complement(CODE_N), CODE_N);
        assert_eq!(decode(&[0, 1, 2, 3, CODE_N]), "ACGTN");
        let complements: String = "ACGTacgtNn-".chars().map(complement_base).collect();
        assert_eq!(complements, "TGCAtgcaNn-");
    }

    #[test]
    fn an_unknown_base_has_no_code() {
        for unknown in ['X', 'U', '-', ' ', 'é', '→'] {
            assert_eq!(code_of(unknown), None, "{unknown:?}");
        }
    }

    #[test]
    #[should_panic(expected = "no base has code 5")]
    fn a_code_past_n_has_no_base() {
        base_of(5);
    }

    #[test]
    fn encodes_either_case_and_n() {
        assert_eq!(
            encode("ACGTacgtNn").unwrap(),
            [0, 1, 2, 3, 0, 1, 2, 3, 4, 4]
        );
    }

    #[test]
    fn one_hot_pads_right_and_leaves_n_empty() {
        let data = one_hot(&["CN", "T"], 3).unwrap();
        assert_eq!(data.shape().as_slice(), [2, 3, 4]);
        #[rustfmt::skip]
        let expected = [
            0.0, 1.0, 0.0, 0.0,  0.0, 0.0, 0.0, 0.0,  0.0, 0.0, 0.0, 0.0,
            0.0, 0.0, 0.0, 1.0,  0.0, 0.0, 0.0, 0.0,  0.0, 0.0, 0.0, 0.0,
        ];
        assert_eq!(data.try_to_vec::<f32>().unwrap(), expected);
    }

    #[test]
    fn invalid_base_names_character_and_position() {
        let err = encode("ACGXT").unwrap_err();
        assert_eq!(
            err,
            EncodeError::InvalidBase {
                base: 'X',
                position: 4
            }
        );
        assert_eq!(
            err.to_string(),
            "invalid base 'X' at position 4 (expected A, C, G, T or N)"
        );
        assert!(one_hot(&["AC-"], 5).is_err());
    }

    #[test]
    fn too_long_and_empty_are_errors() {
        let err = one_hot(&["ACGTA"], 4).unwrap_err();
        assert_eq!(err, EncodeError::TooLong { length: 5, max: 4 });
        assert_eq!(
            err.to_string(),
            "sequence of 5 bases is longer than the model's 4"
        );
        assert_eq!(
            fits(&[0; 5], 4),
            Err(EncodeError::TooLong { length: 5, max: 4 })
        );
        assert_eq!(fits(&[0; 4], 4), Ok(()));
        assert_eq!(encode_for("", 4), Err(EncodeError::Empty));
        assert_eq!(one_hot(&["AC", ""], 4), Err(EncodeError::Empty));
        assert_eq!(encode_for("acgN", 4).unwrap(), [0, 1, 2, 4]);
        // The first problem wins: a long sequence with a bad base names the base.
        assert!(matches!(
            encode_for("ACGTAX", 4),
            Err(EncodeError::InvalidBase { position: 6, .. })
        ));
    }

    #[test]
    fn reverse_complement_of_reverse_complement_is_identity() {
        let seq = "TGCATTTTTTTCACATCaNgt";
        let rc = reverse_complement(seq).unwrap();
        assert_eq!(rc, "acNtGATGTGAAAAAAATGCA");
        assert_eq!(reverse_complement(&rc).unwrap(), seq);
        assert!(reverse_complement("AXG").is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_text_encodes_or_says_why(text in ".{0,130}", length in 1usize..120) {
            match encode_for(&text, length) {
                Ok(codes) => {
                    proptest::prop_assert!(!codes.is_empty() && codes.len() <= length);
                    proptest::prop_assert_eq!(codes.len(), text.len());
                    let x = one_hot(&[&text], length).unwrap();
                    proptest::prop_assert_eq!(x.shape().as_slice(), [1, length, 4]);
                }
                Err(EncodeError::Empty) => proptest::prop_assert!(text.is_empty()),
                Err(EncodeError::InvalidBase { base, position }) => {
                    proptest::prop_assert_eq!(text.chars().nth(position - 1), Some(base));
                }
                Err(EncodeError::TooLong { length: n, max }) => {
                    proptest::prop_assert!(n > max && max == length);
                }
                Err(e @ EncodeError::Substitution(_)) => {
                    proptest::prop_assert!(false, "a sequence alone has no substitution: {e}");
                }
            }
        }

        #[test]
        fn valid_sequences_survive_two_reverse_complements(text in "[ACGTNacgtn]{1,111}") {
            let twice = reverse_complement(&reverse_complement(&text).unwrap()).unwrap();
            proptest::prop_assert_eq!(twice, text);
        }
    }
}
