//! A query's rows as an iterator ([`Database::query_iter`]): the query runs on a thread of
//! its own and hands rows over a bounded channel.

use super::*;

/// Rows of a query as they are produced, from [`Database::query_iter`]. The query runs on a
/// thread of its own, a bounded number of rows ahead of the reader; dropping the iterator
/// cancels it.
pub struct RowIter {
    columns: Vec<String>,
    rows: std::sync::mpsc::Receiver<Result<Vec<Value>>>,
    cancel: CancelToken,
}

impl RowIter {
    /// The result's column names.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }
}

impl Iterator for RowIter {
    type Item = Result<Vec<Value>>;

    fn next(&mut self) -> Option<Self::Item> {
        self.rows.recv().ok()
    }
}

impl Drop for RowIter {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Rows a [`RowIter`]'s query runs ahead of its reader.
const ROW_ITER_AHEAD: usize = 1024;

/// Feeds a [`RowIter`]: columns first, then rows; a reader that went away stops the query.
struct ChannelSink {
    columns: Option<std::sync::mpsc::SyncSender<Vec<String>>>,
    rows: std::sync::mpsc::SyncSender<Result<Vec<Value>>>,
}

impl RowSink for ChannelSink {
    fn columns(&mut self, columns: &[String]) -> Result<()> {
        match self.columns.take() {
            Some(tx) => tx
                .send(columns.to_vec())
                .map_err(|_| Error::Cancelled("the reader went away".into())),
            None => Err(Error::InvalidInput(
                "query_iter runs one query per call".into(),
            )),
        }
    }

    fn row(&mut self, row: Vec<Value>) -> Result<()> {
        self.rows
            .send(Ok(row))
            .map_err(|_| Error::Cancelled("the reader went away".into()))
    }
}

impl Database {
    /// Runs one query and returns its rows as they are produced, for results too large to
    /// collect (the collecting call is [`Session::execute_with_params`]). Errors before the
    /// first row (syntax, unknown table) are returned here; later ones end the iteration.
    pub fn query_iter(&self, sql_text: &str, params: &[Value]) -> Result<RowIter> {
        let prepared = self.parse_cached(sql_text)?;
        let [p] = prepared.as_slice() else {
            return Err(Error::InvalidInput(
                "query_iter takes exactly one statement".into(),
            ));
        };
        if !matches!(p.statement(), ast::Statement::Query(_)) {
            return Err(Error::InvalidInput("query_iter takes a query".into()));
        }
        let (columns_tx, columns_rx) = std::sync::mpsc::sync_channel(1);
        let (rows_tx, rows_rx) = std::sync::mpsc::sync_channel(ROW_ITER_AHEAD);
        let cancel = CancelToken::new();
        let mut session = self.session();
        session.set_cancel_token(cancel.clone());
        let (p, params) = (p.clone(), params.to_vec());
        std::thread::Builder::new()
            .name("chronodb-query".into())
            .spawn(move || {
                let mut sink = ChannelSink {
                    columns: Some(columns_tx),
                    rows: rows_tx,
                };
                if let Err(e) = session.run_streaming(&p, &params, &mut sink) {
                    let _ = sink.rows.send(Err(e));
                }
            })
            .map_err(|e| Error::Unavailable(format!("cannot start a query thread: {e}")))?;
        match columns_rx.recv() {
            Ok(columns) => Ok(RowIter {
                columns,
                rows: rows_rx,
                cancel,
            }),
            // The query failed before producing its columns: its error is waiting.
            Err(_) => Err(match rows_rx.recv() {
                Ok(Err(e)) => e,
                _ => Error::Unavailable("the query thread ended without a result".into()),
            }),
        }
    }
}
