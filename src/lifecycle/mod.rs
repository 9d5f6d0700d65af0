//! Lifecycle governance (issue 16): the tenant's policy (`policy.rs`) and which groups it would
//! act on now, with the evidence (`evaluate.rs`), both pure; what the syncs know, as the
//! evaluation's input (`facts.rs`); where the policy is kept, in the customer's site
//! (`site.rs`).

pub mod evaluate;
pub mod facts;
pub mod policy;
pub mod site;

pub use evaluate::{Candidate, DataState, GroupFacts, NextStep, STALE_AFTER, Withheld, candidates};
pub use policy::{Exclusions, Execution, LifecyclePolicy, NoAnswer, Signal};
