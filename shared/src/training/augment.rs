//! Augmentation inside the variable region, the flanks fixed: EvoAug's
//! insertions and deletions (Lee et al., Genome Biology 2023), kept to the
//! part of the sequence that varies in the library, since the flanks are the
//! plasmid's and never move in the assay.

use rand::Rng;

use crate::encoding::Flanks;

/// Each training row, with probability one half, gets a deletion or (as
/// likely) an insertion of 1 to `max` bases at a random place of its
/// variable region. The region keeps its length and place: a deletion is
/// filled with random bases at the region's 3' end, an insertion pushes as
/// many bases out there. So the flanks stay where they are, and only the
/// variable region's bases after the indel move, by at most `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Indels {
    /// The longest insertion or deletion, in bases.
    pub max: usize,
    /// Bases before the variable region.
    pub flank_5: usize,
    /// Bases after it.
    pub flank_3: usize,
}

impl Indels {
    /// Indels of up to `max` bases inside the DREAM library's flanks (the
    /// Vaishnav et al. 2022 sequences share them).
    pub fn dream(max: usize) -> Self {
        let flanks = Flanks::dream();
        Self {
            max,
            flank_5: flanks.five.len(),
            flank_3: flanks.three.len(),
        }
    }

    /// Edits `row` (base codes 0–3, or 4 for N; no padding) in place; a row
    /// whose variable region is not longer than `max` is left as it is.
    pub fn apply(&self, row: &mut [u8], rng: &mut impl Rng) {
        let end = row.len().saturating_sub(self.flank_3);
        if self.max == 0 || end <= self.flank_5 + self.max || !rng.random_bool(0.5) {
            return;
        }
        let region = &mut row[self.flank_5..end];
        let length = rng.random_range(1..=self.max);
        let at = rng.random_range(0..=region.len() - length);
        let filled = if rng.random_bool(0.5) {
            // Deletion: the bases after it move 5'-ward, new ones at the end.
            region[at..].rotate_left(length);
            region.len() - length..region.len()
        } else {
            // Insertion: the bases after it move 3'-ward, the last ones out.
            region[at..].rotate_right(length);
            at..at + length
        };
        for code in &mut region[filled] {
            *code = rng.random_range(0..4);
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// A 110-bp row: the DREAM flanks and a variable region of distinct
    /// codes, so that each edit can be read off it.
    fn row() -> Vec<u8> {
        let flanks = Flanks::dream();
        let mut codes = Vec::new();
        crate::encoding::encode_into(&flanks.five, &mut codes).unwrap();
        codes.extend((0..80).map(|i| 10 + i as u8)); // marks, not bases
        let mut three = Vec::new();
        crate::encoding::encode_into(&flanks.three, &mut three).unwrap();
        codes.extend(three);
        codes
    }

    #[test]
    fn indels_keep_the_flanks_and_move_the_region_by_at_most_max() {
        let indels = Indels::dream(3);
        let original = row();
        let region = indels.flank_5..original.len() - indels.flank_3;
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let (mut unchanged, mut deletions, mut insertions) = (0, 0, 0);
        for _ in 0..400 {
            let mut edited = original.clone();
            indels.apply(&mut edited, &mut rng);
            assert_eq!(edited.len(), original.len());
            assert_eq!(edited[..region.start], original[..region.start]);
            assert_eq!(edited[region.end..], original[region.end..]);
            if edited == original {
                unchanged += 1;
                continue;
            }
            // Marks (codes ≥ 10) keep their order and move by one shift,
            // at most `max`; the rest are new bases (codes 0–3).
            let kept: Vec<(usize, u8)> = edited[region.clone()]
                .iter()
                .enumerate()
                .filter(|(_, c)| **c >= 10)
                .map(|(i, c)| (i, *c))
                .collect();
            let new = 80 - kept.len();
            assert!((1..=3).contains(&new), "{new} new bases");
            assert!(edited[region.clone()].iter().all(|&c| !(4..10).contains(&c)));
            assert!(kept.windows(2).all(|w| w[0].1 < w[1].1), "marks in order");
            let shifts: Vec<isize> = kept
                .iter()
                .map(|&(i, c)| i as isize - (c - 10) as isize)
                .filter(|&s| s != 0)
                .collect();
            assert!(shifts.windows(2).all(|w| w[0] == w[1]), "one shift");
            match shifts.first() {
                Some(&s) if s < 0 => deletions += 1,
                Some(_) => insertions += 1,
                // An indel at the region's very end only renews its last bases.
                None => {}
            }
            assert!(shifts.iter().all(|s| s.unsigned_abs() <= 3));
        }
        // Half the rows are left as they are; the rest split between kinds.
        assert!((150..250).contains(&unchanged), "{unchanged} unchanged");
        assert!(
            deletions > 60 && insertions > 60,
            "{deletions} / {insertions}"
        );
    }

    #[test]
    fn a_region_too_short_for_the_longest_indel_is_left_alone() {
        let indels = Indels {
            max: 4,
            flank_5: 2,
            flank_3: 2,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..50 {
            let mut short = vec![0, 1, 2, 3, 0, 1, 2, 3];
            indels.apply(&mut short, &mut rng);
            assert_eq!(short, vec![0, 1, 2, 3, 0, 1, 2, 3]);
        }
        let mut none = vec![1; 40];
        Indels { max: 0, ..indels }.apply(&mut none, &mut rng);
        assert_eq!(none, vec![1; 40]);
    }
}
