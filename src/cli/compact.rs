//! `casebridge compact`: gives the space retention freed back to the file system, with
//! the daemon stopped (see `store/compact.rs`).

use std::path::Path;
use std::process::ExitCode;

use casebridge::store::Store;

use super::load_config;

pub(crate) fn compact_store(path: &Path) -> ExitCode {
    let (config, base) = match load_config(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let store_path = base.join(&config.store_path);
    match Store::compact(&store_path) {
        Ok(report) => {
            let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
            out!(
                "Compacted the store at {}: {:.1} MiB → {:.1} MiB ({} keys copied and checked).",
                store_path.display(),
                mib(report.before),
                mib(report.after),
                report.keys
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
