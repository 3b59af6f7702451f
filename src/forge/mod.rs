//! Forges: where change sets become pull requests.
//!
//! - [`pr`]: a change set as a branch, commit message, title and body, with the bot's
//!   state hidden in the body.
//! - [`github`]: the GitHub REST client (octocrab underneath), every call counted and
//!   rate limits waited out; the Git Data API for commits GitHub signs.
//! - [`app`]: GitHub App authentication (JWT, installations, installation tokens).
//! - [`fleet`]: which repositories a run covers (token list or App installations,
//!   globs, shard) and the client for each.
//! - [`plan`]: pure: proposals, existing pull requests and their hidden state,
//!   declined digests, `max_open` → what to do with each (open, update with a lease,
//!   close, leave alone, skip with a reason).
//! - [`run`]: per repository, clone, run the job, plan, and execute the plan.

pub mod app;
pub mod fleet;
pub mod github;
pub mod plan;
pub mod pr;
pub mod queue;
pub mod run;
