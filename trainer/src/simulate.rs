//! `promoscope simulate`: DREAM-format data whose expression comes from a
//! known ground truth, for testing training at full scale and checking that a
//! model recovers what generated the data.
//!
//! A sequence is the assay's fixed flanks around 80 uniformly random bases
//! (4% of them 1–3 bases shorter or longer, as in the real data). Its noise-free
//! expression, on the assay's 0–17 bin scale, is a biophysical-style sum:
//!
//! - each motif site's occupancy is `1 / (1 + exp(3·mismatches − 3))`
//!   (0.95 for a perfect site, 0.5 with one mismatch, 0.05 with two; sites with
//!   more mismatches are ignored), scanned on both strands;
//! - a site adds `effect × strand weight × position weight` times its occupancy,
//!   with the position weight `0.5 + centre / length` (stronger near the 3' end,
//!   where transcription starts) for the transcription factors and a window
//!   around 55 bp before the sequence's 3' end for the TATA box;
//! - poly-dT tracts after the 5' flank (runs of five or more T on the forward
//!   strand; poly-dA, the same on the reverse strand, counts half) add per base
//!   beyond four (the flank's own T7 tract is the same in every sequence);
//! - one interaction: Reb1 occupancy times the poly-dT score (Reb1 and poly-dA:dT
//!   tracts cooperate in opening chromatin);
//! - GC content of the whole sequence lowers expression slightly.
//!
//! Measurement: each sequence is "read" `1 + Poisson(4)` times; each read is
//! the sort bin (`0..=17`) of one cell, `floor(truth + N(0, 1.5))` clipped to the
//! bins; the measured expression is the mean bin of its reads.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use flate2::Compression;
use flate2::write::GzEncoder;
use promoscope_model::encoding::BASES;
use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Poisson};

use crate::io::AtomicFile;

/// The constant 5' flank of the DREAM 2022 library.
pub const FLANK_5: &[u8] = b"TGCATTTTTTTCACATC";
/// The constant 3' flank.
pub const FLANK_3: &[u8] = b"GGTTACGGCTGTT";
/// Random bases between the flanks.
pub const RANDOM_LEN: usize = 80;
/// Sort bins of the assay: expression is on a `0..=17` scale.
pub const BINS: usize = 18;

/// Expression of a sequence with no sites, no tracts and 50% GC.
const BASAL: f64 = 9.0;
/// Change per unit of GC fraction above one half.
const GC_EFFECT: f64 = -6.0;
/// Share of sequences whose random part is 1–3 bases shorter or longer.
const LENGTH_JITTER: f64 = 0.04;
/// Mean of the Poisson part of the read count (each sequence has one more).
const MEAN_EXTRA_READS: f64 = 4.0;
/// Standard deviation of one cell's expression around the truth, in bins.
const CELL_NOISE: f64 = 1.5;
/// Sequences per independently seeded chunk: output does not depend on threads.
const CHUNK: usize = 16_384;

/// A transcription-factor motif of the ground truth.
#[derive(Clone, Copy, Debug)]
pub struct Motif {
    /// Factor.
    pub name: &'static str,
    /// IUPAC consensus, 5'→3' on the strand it binds.
    pub consensus: &'static [u8],
    /// Added expression of a fully occupied site at position weight 1.
    pub effect: f64,
    /// Weight of a site on the reverse strand (forward is 1): orientation effect.
    pub reverse: f64,
    /// Whether the site's effect is a window near the 3' end (the TATA box)
    /// instead of rising towards it.
    pub core_promoter: bool,
}

/// The motifs of the ground truth (consensus sequences from YeTFaSCo/JASPAR).
pub const MOTIFS: [Motif; 4] = [
    Motif {
        name: "Reb1",
        consensus: b"TTACCCG",
        effect: 2.0,
        reverse: 0.5,
        core_promoter: false,
    },
    Motif {
        name: "Abf1",
        consensus: b"RTCRYNNNNNACG",
        effect: 1.5,
        reverse: 1.0,
        core_promoter: false,
    },
    Motif {
        name: "Rap1",
        consensus: b"CACCCRTACA",
        effect: 2.5,
        reverse: 1.0,
        core_promoter: false,
    },
    Motif {
        name: "TATA",
        consensus: b"TATAWAWR",
        effect: 1.5,
        reverse: 0.0,
        core_promoter: true,
    },
];

/// Expression added per base of a poly-dT tract beyond the fourth.
const POLY_T_EFFECT: f64 = 0.3;
/// Tracts longer than this count as this long.
const POLY_T_CAP: usize = 12;
/// Weight of poly-dA (a poly-dT tract on the reverse strand).
const POLY_A_WEIGHT: f64 = 0.5;
/// Reb1 occupancy × poly-dT score.
const REB1_POLY_T_INTERACTION: f64 = 1.0;

/// A base or IUPAC code as the set of bases it admits: A, C, G, T → bits 0–3.
fn mask(code: u8) -> u8 {
    match code {
        b'A' => 0b0001,
        b'C' => 0b0010,
        b'G' => 0b0100,
        b'T' => 0b1000,
        b'R' => 0b0101,
        b'Y' => 0b1010,
        b'W' => 0b1001,
        b'S' => 0b0110,
        b'N' => 0b1111,
        _ => 0,
    }
}

/// The complementary set: A ↔ T, C ↔ G.
fn complement_mask(mask: u8) -> u8 {
    (mask & 0b0001) << 3 | (mask & 0b0010) << 1 | (mask & 0b0100) >> 1 | (mask & 0b1000) >> 3
}

/// Occupancy of a site with `mismatches` mismatches to the consensus.
fn occupancy(mismatches: usize) -> f64 {
    1.0 / (1.0 + (3.0 * mismatches as f64 - 3.0).exp())
}

/// Mismatches of the bases `window` to the codes `consensus` (both as masks);
/// `None` beyond two.
fn mismatches(window: &[u8], consensus: &[u8]) -> Option<usize> {
    let mut count = 0;
    for (&base, &code) in window.iter().zip(consensus) {
        if base & code == 0 {
            count += 1;
            if count > 2 {
                return None;
            }
        }
    }
    Some(count)
}

/// Summed, weighted occupancy of `motif`'s sites in `bases` (as masks). A
/// reverse-strand site is a forward match to the consensus's reverse complement.
fn motif_score(bases: &[u8], motif: &Motif) -> f64 {
    let forward: Vec<u8> = motif.consensus.iter().map(|&c| mask(c)).collect();
    let reverse: Vec<u8> = forward.iter().rev().map(|&m| complement_mask(m)).collect();
    let len = bases.len() as f64;
    let width = forward.len();
    let mut score = 0.0;
    for (start, window) in bases.windows(width).enumerate() {
        let centre = start as f64 + width as f64 / 2.0;
        let position = if motif.core_promoter {
            (-((len - centre - 55.0) / 20.0).powi(2)).exp()
        } else {
            0.5 + centre / len
        };
        for (consensus, weight) in [(&forward, 1.0), (&reverse, motif.reverse)] {
            if weight > 0.0
                && let Some(m) = mismatches(window, consensus)
            {
                score += weight * position * occupancy(m);
            }
        }
    }
    score
}

/// Poly-dT score: per tract of ≥ 5 T, the bases beyond four (capped); poly-dA
/// tracts count [`POLY_A_WEIGHT`].
fn poly_t_score(sequence: &[u8]) -> f64 {
    let mut score = 0.0;
    for (base, weight) in [(b'T', 1.0), (b'A', POLY_A_WEIGHT)] {
        for run in sequence.split(|&b| b != base) {
            if run.len() >= 5 {
                score += weight * (run.len().min(POLY_T_CAP) - 4) as f64;
            }
        }
    }
    score
}

/// The noise-free expression of `sequence` (uppercase `ACGT`), on the bin scale.
pub fn truth(sequence: &[u8]) -> f64 {
    let gc = sequence
        .iter()
        .filter(|&&b| matches!(b, b'G' | b'C'))
        .count() as f64
        / sequence.len().max(1) as f64;
    let mut expression = BASAL + GC_EFFECT * (gc - 0.5);
    let bases: Vec<u8> = sequence.iter().map(|&b| mask(b)).collect();
    let mut reb1 = 0.0;
    for motif in &MOTIFS {
        let score = motif_score(&bases, motif);
        if motif.name == "Reb1" {
            reb1 = score;
        }
        expression += motif.effect * score;
    }
    let poly_t = poly_t_score(&sequence[FLANK_5.len().min(sequence.len())..]);
    expression + POLY_T_EFFECT * poly_t + REB1_POLY_T_INTERACTION * reb1 * poly_t
}

/// One simulated sequence and its expression.
#[derive(Clone, Debug, PartialEq)]
pub struct Simulated {
    /// Flanks and random bases.
    pub sequence: Vec<u8>,
    /// Noise-free expression.
    pub truth: f64,
    /// Measured expression: mean sort bin of its reads.
    pub measured: f64,
}

/// A random sequence in the library's flanks.
fn random_sequence(rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut len = RANDOM_LEN;
    if rng.random_bool(LENGTH_JITTER) {
        let change = rng.random_range(1..=3);
        len = if rng.random_bool(0.5) {
            len - change
        } else {
            len + change
        };
    }
    let mut sequence = FLANK_5.to_vec();
    sequence.extend((0..len).map(|_| BASES[rng.random_range(0..BASES.len())] as u8));
    sequence.extend_from_slice(FLANK_3);
    sequence
}

/// What the assay reports for a sequence of expression `truth`.
fn measure(truth: f64, rng: &mut ChaCha8Rng) -> f64 {
    let reads = Poisson::new(MEAN_EXTRA_READS).expect("positive mean");
    let cell = Normal::new(truth, CELL_NOISE).expect("positive deviation");
    let n = 1 + reads.sample(rng) as usize;
    let top = (BINS - 1) as f64;
    let total: f64 = (0..n)
        .map(|_| cell.sample(rng).floor().clamp(0.0, top))
        .sum();
    total / n as f64
}

/// Chunk `chunk` (`n` sequences) of the set of `seed`, from the chunk's own
/// random stream, so the set is the same however its chunks are scheduled.
fn simulate_chunk(seed: u64, chunk: u64, n: usize) -> Vec<Simulated> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(chunk);
    (0..n)
        .map(|_| {
            let sequence = random_sequence(&mut rng);
            let truth = truth(&sequence);
            let measured = measure(truth, &mut rng);
            Simulated {
                sequence,
                truth,
                measured,
            }
        })
        .collect()
}

/// The first `n` sequences of the set of `seed`, in order.
pub fn simulate(n: usize, seed: u64) -> impl Iterator<Item = Simulated> {
    (0..n.div_ceil(CHUNK)).flat_map(move |chunk| {
        let len = CHUNK.min(n - chunk * CHUNK);
        simulate_chunk(seed, chunk as u64, len)
    })
}

/// The truth file beside `out`: `sim.txt.gz` → `sim.truth.txt.gz`.
pub fn truth_path(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (stem, extension) = match name.find('.') {
        Some(dot) => name.split_at(dot),
        None => (name.as_str(), ""),
    };
    out.with_file_name(format!("{stem}.truth{extension}"))
}

/// `text` as it goes into `path`: a gzip member of its own (fast level) for
/// `.gz`, so chunks compress in parallel and concatenate into one valid file.
fn pack(text: Vec<u8>, path: &Path) -> Vec<u8> {
    if path.extension().is_none_or(|e| e != "gz") {
        return text;
    }
    let mut gz = GzEncoder::new(Vec::with_capacity(text.len() / 3), Compression::fast());
    gz.write_all(&text).expect("writing to a Vec");
    gz.finish().expect("writing to a Vec")
}

/// Writes `n` simulated DREAM lines (`SEQUENCE<TAB>MEASURED`) to `out` and the
/// same sequences with their noise-free expression to `truth_out`, each
/// atomically. Chunks are simulated (and compressed) on all cores; the files
/// are the same for any number of them.
pub fn write(n: usize, seed: u64, out: &Path, truth_out: &Path) -> Result<()> {
    let mut measured_file = AtomicFile::create(out)?;
    let mut truth_file = AtomicFile::create(truth_out)?;
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let chunks: Vec<usize> = (0..n.div_ceil(CHUNK)).collect();
    for wave in chunks.chunks(threads) {
        let texts: Vec<(Vec<u8>, Vec<u8>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = wave
                .iter()
                .map(|&chunk| {
                    scope.spawn(move || {
                        let len = CHUNK.min(n - chunk * CHUNK);
                        let mut measured = Vec::with_capacity(len * 128);
                        let mut truth = Vec::with_capacity(len * 128);
                        for s in simulate_chunk(seed, chunk as u64, len) {
                            for (text, value) in
                                [(&mut measured, s.measured), (&mut truth, s.truth)]
                            {
                                text.extend_from_slice(&s.sequence);
                                writeln!(text, "\t{}", value as f32).expect("writing to a Vec");
                            }
                        }
                        (pack(measured, out), pack(truth, truth_out))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("simulation thread"))
                .collect()
        });
        for (measured, truth) in texts {
            measured_file
                .write_all(&measured)
                .with_context(|| format!("cannot write {}", out.display()))?;
            truth_file
                .write_all(&truth)
                .with_context(|| format!("cannot write {}", truth_out.display()))?;
        }
    }
    measured_file.commit()?;
    truth_file.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed background (no site, no tract, 50% GC) with `insert` at `at`.
    fn with_site(insert: &[u8], at: usize) -> Vec<u8> {
        let mut sequence = FLANK_5.to_vec();
        let random: Vec<u8> = b"GACT".iter().copied().cycle().take(RANDOM_LEN).collect();
        sequence.extend_from_slice(&random);
        sequence.extend_from_slice(FLANK_3);
        let at = FLANK_5.len() + at;
        sequence[at..at + insert.len()].copy_from_slice(insert);
        sequence
    }

    fn reverse_complement(s: &[u8]) -> Vec<u8> {
        let complement = |b: &u8| b"TGCA"[b"ACGT".iter().position(|x| x == b).unwrap()];
        s.iter().rev().map(complement).collect()
    }

    /// Change of `motif`'s score when `insert` is placed at `at`.
    fn site_effect(insert: &[u8], at: usize, motif: usize) -> f64 {
        let score = |s: Vec<u8>| {
            let bases: Vec<u8> = s.iter().map(|&b| mask(b)).collect();
            motif_score(&bases, &MOTIFS[motif])
        };
        score(with_site(insert, at)) - score(with_site(b"", 0))
    }

    #[test]
    fn sites_follow_their_documented_occupancy_position_and_orientation() {
        let (reb1, tata) = (0, 3);
        // A perfect site is 95% occupied; at 60 its position weight is
        // 0.5 + (17 + 60 + 3.5) / 110.
        let site = site_effect(b"TTACCCG", 60, reb1);
        assert!((site - 0.95 * (0.5 + 80.5 / 110.0)).abs() < 0.05, "{site}");
        // Orientation: the reverse strand counts half; position: 5' sites weaker.
        let reverse = site_effect(&reverse_complement(b"TTACCCG"), 60, reb1);
        assert!((reverse / site - 0.5).abs() < 0.05, "{reverse}");
        let early = site_effect(b"TTACCCG", 2, reb1);
        assert!(early < 0.6 * site, "{early}");
        // One mismatch halves occupancy.
        let mismatch = site_effect(b"TTACACG", 60, reb1);
        assert!((mismatch / site - 0.5 / 0.95).abs() < 0.05, "{mismatch}");
        // The TATA box acts only forward and only near the 3' end.
        let box_ = site_effect(b"TATAAAAG", 35, tata);
        let box_far = site_effect(b"TATAAAAG", 0, tata);
        assert!(box_ > 0.9, "{box_}");
        assert!(box_far < 0.1 * box_, "{box_far}");
        // (A reverse box is AT-rich and partly matches forward, so compare
        // against the same motif read on both strands.)
        let reverse_box: Vec<u8> = with_site(&reverse_complement(b"TATAAAAG"), 35)
            .iter()
            .map(|&b| mask(b))
            .collect();
        let both_strands = Motif {
            reverse: 1.0,
            ..MOTIFS[tata]
        };
        let ignored =
            motif_score(&reverse_box, &both_strands) - motif_score(&reverse_box, &MOTIFS[tata]);
        assert!(ignored > 0.9 * box_, "{ignored}");
    }

    #[test]
    fn poly_t_and_its_interaction_with_reb1() {
        assert_eq!(poly_t_score(b"GTTTTTTTC"), 3.0);
        assert_eq!(poly_t_score(b"GAAAAAAAC"), 1.5);
        assert_eq!(poly_t_score(b"GTTTTCT"), 0.0);
        assert_eq!(poly_t_score(&[b'T'; 20]), (POLY_T_CAP - 4) as f64);
        // The flank's own tract is left out: the background has none.
        let background = truth(&with_site(b"", 0));
        let both = truth(&with_site(b"TTTTTTTTCTTACCCG", 50)) - background;
        let reb1 = truth(&with_site(b"GATTACCCG", 58)) - background;
        let poly_t = truth(&with_site(b"TTTTTTTTC", 50)) - background;
        // Interaction: ≈ 1.0 × 1.17 (Reb1) × 4 (poly-dT) on top of the sum.
        assert!(both > reb1 + poly_t + 3.0, "{both} {reb1} {poly_t}");
    }

    #[test]
    fn deterministic_for_a_seed_and_realistic() {
        let a: Vec<Simulated> = simulate(CHUNK + 100, 7).collect();
        let b: Vec<Simulated> = simulate(CHUNK + 100, 7).collect();
        let c: Vec<Simulated> = simulate(100, 8).collect();
        assert_eq!(a, b);
        assert_ne!(a[..100], c[..]);
        let lengths: Vec<usize> = a.iter().map(|s| s.sequence.len()).collect();
        let jittered = lengths.iter().filter(|&&l| l != 110).count() as f64 / a.len() as f64;
        assert!((0.02..0.06).contains(&jittered), "{jittered}");
        assert!(lengths.iter().all(|l| (107..=113).contains(l)));
        for s in &a {
            assert!(s.sequence.starts_with(FLANK_5) && s.sequence.ends_with(FLANK_3));
            assert!((0.0..=17.0).contains(&s.measured));
        }
        // Noise is real but the truth explains much of the measurement.
        let truth: Vec<f64> = a.iter().map(|s| s.truth).collect();
        let measured: Vec<f64> = a.iter().map(|s| s.measured).collect();
        let r = promoscope_model::metrics::pearson(&truth, &measured).unwrap();
        assert!((0.3..0.95).contains(&r), "Pearson(truth, measured) = {r}");
    }

    #[test]
    fn files_are_dream_lines_and_independent_of_chunking() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("sim.txt.gz");
        let truth_out = truth_path(&out);
        assert_eq!(truth_out, dir.path().join("sim.truth.txt.gz"));
        write(CHUNK + 5, 3, &out, &truth_out).unwrap();
        let (data, report) = crate::data::read(&out, 113, false).unwrap();
        let (truth_data, _) = crate::data::read(&truth_out, 113, false).unwrap();
        assert_eq!(report, crate::data::ReadReport::default());
        assert_eq!(data.len(), CHUNK + 5);
        let expected: Vec<Simulated> = simulate(CHUNK + 5, 3).collect();
        for (i, s) in expected.iter().enumerate() {
            assert_eq!(data.labels[i], s.measured as f32);
            assert_eq!(truth_data.labels[i], s.truth as f32);
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
