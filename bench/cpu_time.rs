//! CPU time of a process, from /proc, shared by the benchmarks.

use std::time::Duration;

/// User and system time of `pid` (a number, or `self`) so far.
pub fn of(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which may hold spaces, in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line, 11 and 12 after the
    // name; USER_HZ ticks are 100 a second on Linux whatever the kernel's own
    // tick rate.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}
