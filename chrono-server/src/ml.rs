//! The documented `db.ml_optimizer`: the learned cardinality estimator's reports.
//!
//! The estimator needs libtorch; it is built in with the `ml` cargo feature (on by
//! default). Without it ([`off`]) there is no learned estimator: `ChronoDb::ml_optimizer()`
//! is `None`, the planner uses the statistics estimator, and the shell's `.ml`, the health
//! report and gRPC `Optimizer` say the learned estimator is not built in.

#[cfg(not(feature = "ml"))]
pub use off::{MlOptimizer, PerformanceMetrics, TrainingReport};
#[cfg(feature = "ml")]
pub use on::*;

/// Whether this build has the learned estimator (the `ml` feature).
pub const BUILT_IN: bool = cfg!(feature = "ml");

#[cfg(feature = "ml")]
mod on {
    use std::path::{Path, PathBuf};

    use chrono_ml::LearnedEstimator;
    pub use chrono_ml::report::TrainingReport;
    pub use chrono_ml::{PerformanceMetrics, TableMetrics};

    use crate::error::{Error, Result};

    /// The learned estimator of an open database (`features.ml_optimizer.enabled`).
    pub struct MlOptimizer {
        pub(crate) estimator: LearnedEstimator,
        pub(crate) report_dir: PathBuf,
    }

    impl MlOptimizer {
        /// Q-error percentiles of each table's network and of the statistics baseline on
        /// held-out queries, estimates served, inference time, model versions, trainings.
        pub fn get_performance_metrics(&self) -> PerformanceMetrics {
            self.estimator.metrics()
        }

        /// Every training since the database was opened (data sizes, epochs, loss per epoch,
        /// time, q-error before and after), with a plot (`training-report.svg`: loss curves
        /// and the held-out q-error distribution against the baseline) in the database's
        /// `reports` directory.
        pub fn generate_training_report(&self) -> Result<TrainingReport> {
            self.generate_training_report_in(&self.report_dir)
        }

        /// [`MlOptimizer::generate_training_report`] with the plot written to `dir`.
        pub fn generate_training_report_in(&self, dir: &Path) -> Result<TrainingReport> {
            self.estimator
                .training_report(Some(dir))
                .map_err(|e| Error::Io(format!("cannot write the training report: {e}")))
        }

        /// Waits for background retrainings to finish.
        pub fn wait_idle(&self) {
            self.estimator.wait_idle();
        }

        /// Whether a training runs (after an ANALYZE, or on feedback).
        pub fn is_training(&self) -> bool {
            self.estimator.is_training()
        }

        /// The estimator itself.
        pub fn estimator(&self) -> &LearnedEstimator {
            &self.estimator
        }
    }
}

/// A build without the `ml` feature: no learned estimator (an `MlOptimizer` cannot exist).
#[cfg(not(feature = "ml"))]
pub mod off {
    use std::path::Path;

    use crate::error::Result;

    /// No learned estimator in this build; never constructed.
    pub struct MlOptimizer {
        never: std::convert::Infallible,
    }

    /// No metrics in this build (`ml_optimizer()` is always `None`).
    #[derive(Debug, Clone, serde::Serialize)]
    pub struct PerformanceMetrics;

    /// No training report in this build (`ml_optimizer()` is always `None`).
    #[derive(Debug)]
    pub struct TrainingReport;

    impl std::fmt::Display for PerformanceMetrics {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("the learned estimator is not built in")
        }
    }

    impl std::fmt::Display for TrainingReport {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("the learned estimator is not built in")
        }
    }

    impl MlOptimizer {
        /// Never called: there is no learned estimator.
        pub fn get_performance_metrics(&self) -> PerformanceMetrics {
            match self.never {}
        }

        /// Never called: there is no learned estimator.
        pub fn generate_training_report(&self) -> Result<TrainingReport> {
            match self.never {}
        }

        /// Never called: there is no learned estimator.
        pub fn generate_training_report_in(&self, _dir: &Path) -> Result<TrainingReport> {
            match self.never {}
        }

        /// Never called: there is no learned estimator.
        pub fn wait_idle(&self) {
            match self.never {}
        }

        /// Never called: there is no learned estimator.
        pub fn is_training(&self) -> bool {
            match self.never {}
        }
    }
}
