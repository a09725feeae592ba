//! What RocksDB wrote in its own `LOG` file about a failed open: the WAL file and the
//! bytes it dropped, which its returned error ("Corruption: checksum mismatch") leaves out.

/// RocksDB's info log in its directory.
pub const ROCKSDB_INFO_LOG: &str = "LOG";
/// Lines quoted at most.
const LINES_MAX: usize = 4;

/// The corruption lines of the last recovery in `log`, without RocksDB's timestamp,
/// thread and source-file prefix: e.g. `/data/log/000004.log: dropping 12788 bytes;
/// Corruption: checksum mismatch`.
pub fn corruption_lines(log: &str) -> Vec<String> {
    let last_recovery = log
        .rfind("\"recovery_started\"")
        .map_or(log, |at| &log[at..]);
    last_recovery
        .lines()
        .filter(|l| {
            l.contains("Corruption") && !l.contains("EVENT_LOG") && !l.contains("DB::Open() failed")
        })
        .map(|l| match l.rfind("] ") {
            Some(at) => l[at + 2..].to_owned(),
            None => l.to_owned(),
        })
        .take(LINES_MAX)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As RocksDB 10.4 wrote it when a byte in the middle of a WAL was flipped.
    const SAMPLE: &str = r#"2026/11/30-20:32:01.100000 9000 [WARN] [db/db_impl/db_impl_open.cc:1117] /old/000001.log: dropping 1 bytes; Corruption: old run
2026/11/30-20:33:25.620260 9631 EVENT_LOG_v1 {"time_micros": 1796070805620252, "job": 1, "event": "recovery_started", "wal_files": [4]}
2026/11/30-20:33:25.620262 9631 [db/db_impl/db_impl_open.cc:1377] Recovering log #4 mode 0
2026/11/30-20:33:25.620415 9631 [WARN] [db/db_impl/db_impl_open.cc:1117] /d/log/000004.log: dropping 12788 bytes; Corruption: checksum mismatch
2026/11/30-20:33:25.620510 9631 [WARN] [db/db_impl/db_impl_open.cc:1117] /d/log/000004.log: dropping 20 bytes; Corruption: missing start of fragmented record(2)
2026/11/30-20:33:25.620518 9631 EVENT_LOG_v1 {"time_micros": 1796070805620517, "job": 1, "event": "recovery_failed", "status": "Corruption: checksum mismatch"}
2026/11/30-20:33:25.620588 9631 [WARN] [db/db_impl/db_impl_open.cc:2692] DB::Open() failed: Corruption: checksum mismatch
"#;

    #[test]
    fn the_last_recovery_s_corruption_lines_name_the_wal_file() {
        assert_eq!(
            corruption_lines(SAMPLE),
            [
                "/d/log/000004.log: dropping 12788 bytes; Corruption: checksum mismatch",
                "/d/log/000004.log: dropping 20 bytes; Corruption: missing start of fragmented record(2)",
            ]
        );
        assert!(corruption_lines("").is_empty());
    }
}
