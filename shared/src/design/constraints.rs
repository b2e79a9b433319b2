//! The constraints of cloning that every proposed sequence meets
//! ([`Constraints`]), the rules that check a candidate against them, and the
//! checks that refuse, before any work, constraints no design can meet.

use std::ops::Range;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::output::differences;
use super::search::TRIES;
use super::spec::DesignError;
use crate::encoding::{CODE_N, base_of, complement, decode, encode};

/// The type IIS sites of Golden Gate cloning, a ready list of forbidden
/// sequences: BsaI and BsmBI.
pub const TYPE_IIS: [(&str, &str); 2] = [("BsaI", "GGTCTC"), ("BsmBI", "CGTCTC")];

/// What every proposed sequence must satisfy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Constraints {
    /// At most this many substitutions from the start (none: unlimited).
    pub max_mutations: Option<usize>,
    /// The share of G and C in the variable region, `[min, max]` (0..=1).
    pub gc: Option<(f32, f32)>,
    /// Sequences that may not occur on either strand (A/C/G/T).
    pub forbidden: Vec<String>,
    /// The longest run of one base that touches the variable region.
    pub max_homopolymer: Option<usize>,
}

/// The constraints and what they apply to.
pub(super) struct Rules<'a> {
    constraints: &'a Constraints,
    forbidden: &'a [Vec<u8>],
    editable: &'a Range<usize>,
}

impl<'a> Rules<'a> {
    /// `constraints`, with `forbidden` as [`motifs`] gives them, on the
    /// variable region `editable`.
    pub(super) fn new(
        constraints: &'a Constraints,
        forbidden: &'a [Vec<u8>],
        editable: &'a Range<usize>,
    ) -> Self {
        Rules {
            constraints,
            forbidden,
            editable,
        }
    }

    /// Each start: nothing forbidden in its flanks, no constraint broken.
    pub(super) fn check_starts(&self, starts: &[Vec<u8>]) -> Result<(), DesignError> {
        for (i, codes) in starts.iter().enumerate() {
            self.check_fixed(codes)?;
            if let Some(problem) = self.violation(codes, codes) {
                return Err(DesignError::Start {
                    index: i + 1,
                    problem: format!("{problem}; change it or the constraint"),
                });
            }
        }
        Ok(())
    }

    /// The first constraint `codes` (descended from `origin`) breaks.
    pub(super) fn violation(&self, codes: &[u8], origin: &[u8]) -> Option<String> {
        let c = self.constraints;
        if let Some(k) = c.max_mutations {
            let n = differences(origin, codes).len();
            if n > k {
                return Some(format!("{n} substitutions from the start, more than {k}"));
            }
        }
        if let Some((min, max)) = c.gc {
            let gc = gc_fraction(&codes[self.editable.clone()]);
            if gc < min - 1e-6 || gc > max + 1e-6 {
                return Some(format!(
                    "GC {:.1}% of the variable region, outside {:.1}–{:.1}%",
                    gc * 100.0,
                    min * 100.0,
                    max * 100.0
                ));
            }
        }
        for motif in self.forbidden {
            if let Some(at) = find(codes, motif) {
                return Some(format!(
                    "holds the forbidden {} at {}..{}",
                    decode(motif),
                    at + 1,
                    at + motif.len()
                ));
            }
        }
        let limit = c.max_homopolymer?;
        let (at, run) = longest_run(codes, self.editable).filter(|&(_, n)| n > limit)?;
        Some(format!(
            "a run of {run} {} at {}, longer than {limit}",
            base_of(codes[at]),
            at + 1
        ))
    }

    /// A random variable region in `template`'s flanks that meets the
    /// constraints (GC drawn near the window's middle).
    pub(super) fn random(
        &self,
        template: &[u8],
        rng: &mut ChaCha8Rng,
    ) -> Result<Vec<u8>, DesignError> {
        let gc = self
            .constraints
            .gc
            .map_or(0.5, |(min, max)| (min + max) / 2.0) as f64;
        for _ in 0..TRIES {
            let mut codes = template.to_vec();
            for p in self.editable.clone() {
                let strong = rng.random_bool(gc);
                let second = rng.random_bool(0.5);
                // A=0, C=1, G=2, T=3: C/G strong, A/T weak.
                codes[p] = match (strong, second) {
                    (true, false) => 1,
                    (true, true) => 2,
                    (false, false) => 0,
                    (false, true) => 3,
                };
            }
            // Its own origin: no substitutions to count.
            if self.violation(&codes, &codes).is_none() {
                return Ok(codes);
            }
        }
        Err(DesignError::Constraint(format!(
            "no random region of {} bases meeting the constraints in {TRIES} draws",
            self.editable.len()
        )))
    }

    /// A forbidden sequence inside the fixed flanks, which no design can change;
    /// a GC window no variable region of this length can meet.
    pub(super) fn check_fixed(&self, codes: &[u8]) -> Result<(), DesignError> {
        let editable = self.editable;
        for motif in self.forbidden {
            for at in 0..(codes.len() + 1).saturating_sub(motif.len()) {
                let span = at..at + motif.len();
                let fixed = span.end <= editable.start || span.start >= editable.end;
                if fixed && codes[span.clone()] == motif[..] {
                    return Err(DesignError::Constraint(format!(
                        "the forbidden {} occurs in a fixed flank at {}..{}: no design can avoid it",
                        decode(motif),
                        span.start + 1,
                        span.end
                    )));
                }
            }
        }
        if let Some((min, max)) = self.constraints.gc {
            let n = editable.len() as f32;
            let (lo, hi) = ((min * n - 1e-4).ceil(), (max * n + 1e-4).floor());
            if lo > hi {
                return Err(DesignError::Constraint(format!(
                    "GC window {:.1}–{:.1}%: no variable region of {n} bases has a G/C count in it",
                    min * 100.0,
                    max * 100.0
                )));
            }
        }
        Ok(())
    }
}

/// Constraints that make no sense whatever the starts: a GC window outside
/// 0–100% or upside down, a longest homopolymer of 0.
pub(super) fn check_constraints(constraints: &Constraints) -> Result<(), DesignError> {
    if let Some((min, max)) = constraints.gc {
        if !(0.0..=1.0).contains(&min) || !(0.0..=1.0).contains(&max) {
            return Err(DesignError::Constraint(format!(
                "GC window {:.1}–{:.1}%: both ends must lie in 0–100%",
                min * 100.0,
                max * 100.0
            )));
        }
        if min > max {
            return Err(DesignError::Constraint(format!(
                "GC window {:.1}–{:.1}%: the minimum is above the maximum",
                min * 100.0,
                max * 100.0
            )));
        }
    }
    if constraints.max_homopolymer == Some(0) {
        return Err(DesignError::Constraint(
            "a longest homopolymer of 0: every base is a run of 1".into(),
        ));
    }
    Ok(())
}

/// Forbidden sequences and their reverse complements, as codes.
pub(super) fn motifs(forbidden: &[String]) -> Result<Vec<Vec<u8>>, DesignError> {
    let mut all: Vec<Vec<u8>> = Vec::new();
    for motif in forbidden {
        let codes = encode(motif.trim())
            .ok()
            .filter(|c| !c.is_empty() && c.iter().all(|&b| b < CODE_N))
            .ok_or_else(|| {
                DesignError::Constraint(format!(
                    "forbidden sequence {motif:?}: expected A, C, G and T only"
                ))
            })?;
        let reverse: Vec<u8> = codes.iter().rev().map(|&b| complement(b)).collect();
        for m in [codes, reverse] {
            if !all.contains(&m) {
                all.push(m);
            }
        }
    }
    Ok(all)
}

fn gc_fraction(codes: &[u8]) -> f32 {
    let gc = codes.iter().filter(|&&c| c == 1 || c == 2).count();
    gc as f32 / codes.len().max(1) as f32
}

fn find(codes: &[u8], motif: &[u8]) -> Option<usize> {
    codes.windows(motif.len()).position(|w| w == motif)
}

/// The longest run of one base that touches `editable`: (start, length).
fn longest_run(codes: &[u8], editable: &Range<usize>) -> Option<(usize, usize)> {
    let mut best: Option<(usize, usize)> = None;
    let mut start = 0;
    for end in 1..=codes.len() {
        if end == codes.len() || codes[end] != codes[start] {
            let touches = start < editable.end && end > editable.start;
            if touches && best.is_none_or(|(_, n)| end - start > n) {
                best = Some((start, end - start));
            }
            start = end;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use proptest::prelude::{ProptestConfig, any, prop_assert, prop_assert_eq, proptest};

    use super::*;
    use crate::design::testing::{START, drive, spec, toy};
    use crate::design::{Design, Starts, Strategy};
    use crate::encoding::Flanks;

    fn reverse_complement(s: &str) -> String {
        crate::encoding::reverse_complement(s).unwrap()
    }

    fn longest_touching_run(s: &str, region: &Range<usize>) -> usize {
        let b = s.as_bytes();
        let mut best = 0;
        let mut start = 0;
        for end in 1..=b.len() {
            if end == b.len() || b[end] != b[start] {
                if start < region.end && end > region.start {
                    best = best.max(end - start);
                }
                start = end;
            }
        }
        best
    }

    fn type_iis() -> Vec<String> {
        TYPE_IIS.iter().map(|(_, s)| s.to_string()).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        /// Every sequence proposed, and so every design, meets every constraint.
        #[test]
        fn constraints_hold_on_every_proposed_sequence(
            seed in 0u64..1_000,
            evolve in any::<bool>(),
            given in any::<bool>(),
            k in 2usize..12,
            homopolymer in 3usize..6,
            gc_low in 0.3f32..0.45,
        ) {
            let gc = (gc_low, gc_low + 0.15);
            let constraints = Constraints {
                max_mutations: Some(k),
                gc: Some(gc),
                forbidden: type_iis(),
                max_homopolymer: Some(homopolymer),
            };
            let starts = if given {
                Starts::Given(vec![START[17..97].to_string()])
            } else {
                Starts::Random { count: 3, length: 80 }
            };
            let strategy = if evolve {
                Strategy::Evolve { population: 16, generations: 4 }
            } else {
                Strategy::Greedy { rounds: 6 }
            };
            let flanks = Flanks::dream();
            // The example's own runs and GC may break the drawn limits: then it
            // must say so before any work.
            let mut design = match Design::new(spec(starts, strategy, constraints, seed), &flanks, 111) {
                Ok(design) => design,
                Err(e) => {
                    prop_assert!(given && matches!(e, DesignError::Start { index: 1, .. }), "{e}");
                    return Ok(());
                }
            };
            let region = design.editable();
            let check = |s: &str| {
                let variable = &s[region.clone()];
                let gc_share = variable.bytes().filter(|&b| b == b'G' || b == b'C').count() as f32
                    / variable.len() as f32;
                assert!(gc_share >= gc.0 - 1e-6 && gc_share <= gc.1 + 1e-6, "GC {gc_share} in {s}");
                for motif in type_iis() {
                    assert!(!s.contains(&motif) && !s.contains(&reverse_complement(&motif)), "{motif} in {s}");
                }
                assert!(longest_touching_run(s, &region) <= homopolymer, "run in {s}");
                assert!(s.starts_with(&flanks.five) && s.ends_with(&flanks.three), "flanks of {s}");
            };
            let result = drive(&mut design, check);
            prop_assert!(!result.designs.is_empty());
            for d in result.designs.iter().chain(&result.starts) {
                check(&d.sequence);
                prop_assert!(d.mutations.len() <= k, "{} mutations", d.mutations.len());
                let start = &result.starts[d.start - 1].sequence;
                let differ = start.bytes().zip(d.sequence.bytes()).filter(|(a, b)| a != b).count();
                prop_assert_eq!(differ, d.mutations.len());
                prop_assert!((toy(&d.sequence) - d.prediction).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn impossible_constraints_are_refused_before_any_work() {
        let refused = |constraints: Constraints, starts: Starts| {
            let s = spec(starts, Strategy::Greedy { rounds: 3 }, constraints, 1);
            Design::new(s, &Flanks::dream(), 111)
                .err()
                .unwrap()
                .to_string()
        };
        let random = Starts::Random {
            count: 1,
            length: 80,
        };
        let gc = |min, max| Constraints {
            gc: Some((min, max)),
            ..Constraints::default()
        };
        assert!(refused(gc(0.6, 0.4), random.clone()).contains("minimum is above the maximum"));
        assert!(refused(gc(0.501, 0.509), random.clone()).contains("no variable region of 80"));
        let in_flank = Constraints {
            forbidden: vec!["CACATC".into()],
            ..Constraints::default()
        };
        let message = refused(in_flank, random.clone());
        assert!(
            message.contains("CACATC occurs in a fixed flank at 12..17"),
            "{message}"
        );
        let bad = Constraints {
            forbidden: vec!["GGXC".into()],
            ..Constraints::default()
        };
        assert!(refused(bad, random.clone()).contains("\"GGXC\""));
        // The start breaks a constraint: says which, where.
        let homopolymer = Constraints {
            max_homopolymer: Some(3),
            ..Constraints::default()
        };
        let message = refused(homopolymer, Starts::Given(vec![START.into()]));
        assert!(
            message.starts_with("start sequence 1: a run of 4 A at 26"),
            "{message}"
        );
        assert!(
            refused(
                Constraints::default(),
                Starts::Given(vec!["ACGTNACGT".into()])
            )
            .contains("an N at 22")
        );
        let s = spec(
            random,
            Strategy::Evolve {
                population: 1,
                generations: 2,
            },
            Constraints::default(),
            1,
        );
        assert!(Design::new(s, &Flanks::dream(), 111).is_err());
    }

    #[test]
    fn a_forbidden_sequence_is_forbidden_on_both_strands() {
        let codes = |s: &str| encode(s).unwrap();
        let both = motifs(&[" GGTCTC".into(), "gagacc".into()]).unwrap();
        assert_eq!(both, [codes("GGTCTC"), codes("GAGACC")]);
        // EcoRI's site is its own reverse complement: one motif.
        assert_eq!(motifs(&["GAATTC".into()]).unwrap(), [codes("GAATTC")]);
        for bad in ["", "GGNC", "GG-C"] {
            assert!(motifs(&[bad.into()]).is_err(), "{bad:?}");
        }
    }
}
