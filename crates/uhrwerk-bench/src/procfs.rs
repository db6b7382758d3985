//! What the driver reads from /proc: a process's CPU time (utime+stime from `stat`), memory
//! (VmHWM, VmRSS from `status`) and open file descriptors (`fd`), the machine (CPU model and
//! cores from `cpuinfo`, `loadavg`), and the UTC date for the report.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// utime and stime, in clock ticks, from the text of `/proc/<pid>/stat`.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may contain spaces: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Busy CPU seconds of the whole machine from the text of `/proc/stat` (the `cpu` line: every
/// column but idle and iowait; guest time is already inside user), in clock ticks.
pub fn parse_machine_busy_ticks(stat: &str) -> Option<u64> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let values: Vec<u64> = line.split_whitespace().skip(1).map(|v| v.parse().ok()).collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice]
    let busy = values.iter().take(8).enumerate().filter(|(i, _)| *i != 3 && *i != 4).map(|(_, v)| v).sum();
    (values.len() >= 8).then_some(busy)
}

/// Busy CPU seconds of the whole machine so far (all cores together).
pub fn machine_busy_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    parse_machine_busy_ticks(&stat).unwrap_or(0) as f64 / clock_ticks_per_second()
}

/// A `kB` line of `/proc/<pid>/status` (`VmHWM`, `VmRSS`), in kB.
pub fn parse_status_kb(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let value = line.strip_prefix(key)?.strip_prefix(':')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions; it only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// CPU seconds (user + system) the process has used so far.
pub fn cpu_seconds(pid: u32) -> std::io::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let ticks = parse_stat_ticks(&stat).ok_or_else(|| std::io::Error::other(format!("unreadable /proc/{pid}/stat")))?;
    Ok(ticks as f64 / clock_ticks_per_second())
}

/// CPU seconds of this driver process.
pub fn own_cpu_seconds() -> f64 {
    cpu_seconds(std::process::id()).unwrap_or(0.0)
}

/// Resident memory of a process, in kB.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Memory {
    /// Peak resident set size since the process started (VmHWM).
    pub peak_rss_kb: u64,
    /// Resident set size now (VmRSS).
    pub rss_kb: u64,
    /// Of it, anonymous memory (RssAnon): the heap, without mapped files such as the binary.
    pub anon_kb: u64,
}

pub fn memory(pid: u32) -> std::io::Result<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    Ok(Memory {
        peak_rss_kb: parse_status_kb(&status, "VmHWM").unwrap_or(0),
        rss_kb: parse_status_kb(&status, "VmRSS").unwrap_or(0),
        anon_kb: parse_status_kb(&status, "RssAnon").unwrap_or(0),
    })
}

/// Open file descriptors of a process: the entries of `/proc/<pid>/fd`.
pub fn open_fds(pid: u32) -> std::io::Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count())
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Machine {
    pub cpu_model: String,
    pub cores: usize,
}

/// CPU model and logical core count from the text of `/proc/cpuinfo`.
pub fn parse_cpuinfo(cpuinfo: &str) -> Machine {
    let mut machine = Machine::default();
    for line in cpuinfo.lines() {
        let Some((key, value)) = line.split_once(':') else { continue };
        match key.trim() {
            "processor" => machine.cores += 1,
            "model name" if machine.cpu_model.is_empty() => machine.cpu_model = value.trim().to_string(),
            _ => {}
        }
    }
    if machine.cpu_model.is_empty() {
        machine.cpu_model = "unknown".into();
    }
    machine
}

pub fn machine() -> Machine {
    parse_cpuinfo(&std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default())
}

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` writes them.
pub fn loadavg() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// `YYYY-MM-DD HH:MM UTC` for seconds since the Unix epoch.
pub fn utc_date(unix_seconds: u64) -> String {
    let days = (unix_seconds / 86_400) as i64;
    let secs = unix_seconds % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02} UTC", secs / 3600, secs % 3600 / 60)
}

pub fn now_utc() -> String {
    utc_date(SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_cpu_fields() {
        let stat = "4242 (temporal server) S 1 4242 4242 0 -1 4194560 1200 0 0 0 731 129 0 0 20 0 12 0 9000 1000 2000";
        assert_eq!(parse_stat_ticks(stat), Some(860));
        assert_eq!(parse_stat_ticks("1 (a) S 1"), None);
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn machine_busy_time() {
        let stat = "cpu  100 5 50 9000 40 3 2 1 0 0\ncpu0 50 2 25 4500 20 1 1 0 0 0\nintr 1\n";
        assert_eq!(parse_machine_busy_ticks(stat), Some(161));
        assert_eq!(parse_machine_busy_ticks("cpu  1 2 3\n"), None);
        assert_eq!(parse_machine_busy_ticks(""), None);
    }

    #[test]
    fn status_kb_lines() {
        let status = "Name:\tuhrwerk\nVmPeak:\t  900000 kB\nVmHWM:\t   51234 kB\nVmRSS:\t   40000 kB\n";
        assert_eq!(parse_status_kb(status, "VmHWM"), Some(51_234));
        assert_eq!(parse_status_kb(status, "VmRSS"), Some(40_000));
        assert_eq!(parse_status_kb(status, "VmSwap"), None);
    }

    #[test]
    fn cpuinfo_model_and_cores() {
        let text =
            "processor\t: 0\nmodel name\t: Some CPU @ 2.0GHz\n\nprocessor\t: 1\nmodel name\t: Some CPU @ 2.0GHz\n";
        assert_eq!(parse_cpuinfo(text), Machine { cpu_model: "Some CPU @ 2.0GHz".into(), cores: 2 });
        assert_eq!(parse_cpuinfo(""), Machine { cpu_model: "unknown".into(), cores: 0 });
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc_date(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_date(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc_date(1_767_225_599), "2025-12-31 23:59 UTC");
    }
}
