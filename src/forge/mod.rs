//! Forges: where change sets become pull requests. [`pr`] renders a change set as a
//! branch, commit message, title and body (with the bot's state hidden in it); the GitHub
//! client and the run loop come next.

pub mod app;
pub mod github;
pub mod pr;
pub mod run;
