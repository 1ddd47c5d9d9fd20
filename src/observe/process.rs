//! The process' own resource use, read from /proc at scrape time: CPU
//! seconds, resident and virtual memory, open and maximum file
//! descriptors, start time. Names follow the Prometheus client
//! conventions (`process_*`) so standard dashboards work.

use std::sync::OnceLock;

/// One reading of the process' resources. Fields are `None` where /proc
/// is not available (not Linux) or could not be read.
#[derive(Debug, Default, Clone, Copy)]
pub struct Usage {
    pub cpu_seconds: Option<f64>,
    pub resident_bytes: Option<u64>,
    pub virtual_bytes: Option<u64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
    pub start_time_seconds: Option<f64>,
}

/// Reads the current usage.
pub fn usage() -> Usage {
    let mut usage = Usage {
        start_time_seconds: Some(start_time()),
        ..Usage::default()
    };
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the command name (which may contain spaces) start at
        // "state"; utime and stime are fields 14 and 15 of the whole line.
        if let Some((_, rest)) = stat.rsplit_once(')') {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let number = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
            let ticks = clock_ticks();
            if let (Some(user), Some(system)) = (number(11), number(12)) {
                usage.cpu_seconds = Some((user + system) as f64 / ticks);
            }
            usage.virtual_bytes = number(20);
            usage.resident_bytes = number(21).map(|pages| pages * page_size());
        }
    }
    if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
        usage.open_fds = Some(entries.count() as u64);
    }
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        usage.max_fds = Some(limit.rlim_cur);
    }
    usage
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).unwrap_or(4096).max(1)
}

/// Unix time the process started, taken the first time anyone asks (wharf
/// asks at start-up).
pub fn start_time() -> f64 {
    static START: OnceLock<f64> = OnceLock::new();
    *START.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
    })
}
