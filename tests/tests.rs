//! Integration tests: one binary, a module per command or concern, shared test support
//! (the `repin` runner, a real registry, a token server, an image pusher) in `support`.

mod check;
mod config;
mod faults;
mod git;
mod rules;
mod run;
mod scan;
mod serve;
mod servers;
mod support;
mod trust;
