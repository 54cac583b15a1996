//! The brief's `db.ml_optimizer`: the learned cardinality estimator's reports.

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

    /// The estimator itself.
    pub fn estimator(&self) -> &LearnedEstimator {
        &self.estimator
    }
}
