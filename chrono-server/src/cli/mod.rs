//! The pieces of the `chronodb` command-line tool: the SQL shell and script runner, the
//! CSV importer and the demo.

pub mod audit;
pub mod demo;
pub mod import;
pub mod progress;
pub mod remote;
pub mod shell;
