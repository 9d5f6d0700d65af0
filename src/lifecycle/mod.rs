//! Lifecycle governance (issue 16): the tenant's policy (`policy.rs`) and which groups it would
//! act on now, with the evidence (`evaluate.rs`). Both are pure; the routes, the reviews and
//! the actions build on them.

pub mod evaluate;
pub mod policy;

pub use evaluate::{Candidate, DataState, GroupFacts, NextStep, STALE_AFTER, Withheld, candidates};
pub use policy::{Exclusions, Execution, LifecyclePolicy, NoAnswer, Signal};
