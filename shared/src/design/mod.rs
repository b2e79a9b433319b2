//! Sequence design: a search for sequences the model predicts higher, lower
//! or near a target value, under the constraints of cloning, as Vaishnav et
//! al. (Nature 2022) designed promoters with their model.
//!
//! The flanks stay fixed; only the variable region between them changes.
//! Two strategies:
//! - **greedy**: each round scores every allowed single substitution of the
//!   current sequence (incrementally, as ISM does) and takes the best, while it
//!   improves the objective;
//! - **evolve**: a genetic algorithm. A population of candidates; each
//!   generation keeps the best eighth (elitism) and breeds the rest from
//!   parents picked by tournaments of three, by uniform crossover (half of the
//!   children) and one or two random substitutions.
//!
//! A candidate that breaks a [`Constraints`] is never proposed. [`Design`]
//! asks for batches of predictions and is told them ([`Design::ask`],
//! [`Design::tell`]), so that the page can spread a batch over its workers
//! and the CLI can score it in one loop ([`run`]); with the same seed it
//! proposes the same sequences on every backend, unless two candidates tie
//! within the backends' rounding.
//!
//! One file an idea: `spec.rs`, the task ([`DesignSpec`]) and the reading
//! of its starts; `constraints.rs`, what every candidate must meet and the
//! checks that refuse an impossible task before any work; `search.rs`, the
//! search itself ([`Design`], [`run`]); `output.rs`, what it found
//! ([`DesignResult`]) and its formats.

mod constraints;
mod output;
mod search;
mod spec;
#[cfg(test)]
mod testing;

pub use constraints::{Constraints, TYPE_IIS};
pub use output::{DesignResult, Designed, Step};
pub use search::{Batch, Design, run};
pub use spec::{DesignError, DesignSpec, Objective, Starts, Strategy};
