//! The learned cardinality estimator of ChronoDB: a small MLP per table, trained with
//! libtorch through `tch`, that the planner asks for row estimates and that learns from the
//! queries the database runs.
//!
//! ```text
//! ANALYZE t ──► sample + statistics ──► generated queries, labelled on the data ──► train
//!                                                                                    │
//! planner ──► LearnedEstimator::estimate_scan ──► network (if it beats the baseline) ◄┘
//!   │                                              else the statistics baseline
//!   └─► executor ──► feedback (filter, actual) ──► replay buffer ──► retrain every
//!                                                   `training_interval` records (background)
//! ```
//!
//! - [`atoms`]: a filter taken apart into per-column atoms;
//! - [`columnar`]: coded columns and bitmaps for evaluating atoms on a sample fast;
//! - [`features`]: the MSCN-style featurization;
//! - [`model`]: the network, its training (tch) and its inference (plain Rust);
//! - [`workload`]: training queries drawn from the table's rows;
//! - [`estimator`]: [`LearnedEstimator`], persistence and metrics;
//! - [`report`]: the training report and its SVG plot.

pub mod atoms;
pub mod columnar;
pub mod estimator;
pub mod eval;
pub mod features;
pub mod metrics;
pub mod model;
pub mod report;
pub mod synthetic;
pub mod workload;

pub use estimator::{LearnedEstimator, MlConfig, PerformanceMetrics, TableMetrics, TrainingRun};
pub use metrics::{QErrorSummary, q_error};
