//! Cron schedules of workflows (`cron_schedule`), read and evaluated by
//! [`uhrwerk_schedule::CronSchedule`] as Temporal's server does (robfig/cron's standard grammar:
//! five fields, `@hourly`-style descriptors, `@every <duration>`, `CRON_TZ=`; UTC by default).

use uhrwerk_schedule::CronSchedule;

use crate::time::Millis;

/// A schedule Temporal rejects; its text is Temporal's `INVALID_ARGUMENT` message.
pub use uhrwerk_schedule::CronError as InvalidCron;

/// Checks a schedule as Temporal's `ValidateSchedule` does: it parses and names some time.
pub fn validate(schedule: &str) -> Result<(), InvalidCron> {
    CronSchedule::validate(schedule).map(|_| ())
}

/// The first time after `now_ms` that `schedule` names.
pub fn next_after(schedule: &str, now_ms: Millis) -> Result<Millis, InvalidCron> {
    CronSchedule::parse(schedule)?.next(now_ms).ok_or(InvalidCron::Unsatisfiable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_and_standard_expressions() {
        assert_eq!(next_after("@every 2s", 10_500), Ok(12_000));
        assert_eq!(next_after("@every 1m30s", 0), Ok(90_000));
        // 2026-01-01T00:00:30Z: the next full minute.
        let t = 1_767_225_630_000;
        assert_eq!(next_after("* * * * *", t), Ok(1_767_225_660_000));
        assert_eq!(next_after("@hourly", t), Ok(1_767_229_200_000));
        assert!(validate("not a cron").is_err());
        assert!(validate("@every nonsense").is_err());
    }
}
