//! Integration tests: one binary, a module per command, shared helpers in `util`.

mod scan;
mod util;
