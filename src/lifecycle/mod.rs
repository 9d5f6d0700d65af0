//! Lifecycle governance (issue 16): the tenant's policy (`policy.rs`) and which groups it would
//! act on now, with the evidence (`evaluate.rs`), both pure; what the syncs know, as the
//! evaluation's input (`facts.rs`); where the policy is kept, in the customer's site
//! (`site.rs`); the reviews kept there (`reviews.rs`), deciding them and the actions that
//! follow (`decide.rs`), under a daily cap held across instances (`cap.rs`); groups nobody
//! can answer for (`ownership.rs`); what a tenant that chose `automatic` execution has
//! GroupMgr do by itself (`automatic.rs`).

pub mod automatic;
pub mod cap;
pub mod decide;
pub mod due;
pub mod evaluate;
pub mod facts;
pub mod no_answer;
pub mod ownership;
pub mod policy;
pub mod reviews;
pub mod site;
pub mod webhooks;

pub use evaluate::{Candidate, DataState, GroupFacts, NextStep, STALE_AFTER, Withheld, candidates};
pub use policy::{Exclusions, Execution, LifecyclePolicy, NoAnswer, Signal};
