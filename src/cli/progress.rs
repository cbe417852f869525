//! A progress line on stderr for long work (exporting or verifying millions of audit records): redrawn in place
//! at most ten times a second on a terminal, and nothing at all when stderr is not one, so that scripts and logs
//! see only the output.

use std::io::{IsTerminal, Stderr, Write};
use std::time::{Duration, Instant};

/// Fast enough to look alive, slow enough not to cost the work anything.
pub const REDRAW_EVERY: Duration = Duration::from_millis(100);

pub struct Progress<W: Write> {
    /// None when nobody watches: every call is then a no-op.
    out: Option<W>,
    verb: &'static str,
    started: Instant,
    last_drawn: Option<Instant>,
    /// The width of the line on screen, to blank what a shorter redraw would leave behind.
    width: usize,
    /// How much of the work is done, from 0 to 1, when that is known: drawn as a bar.
    share: Option<f64>,
}

impl Progress<Stderr> {
    /// Progress on stderr if it is a terminal. `shown` false keeps it off even then, e.g. when the output itself
    /// scrolls by on the same terminal.
    pub fn on_stderr(verb: &'static str, shown: bool) -> Self {
        let stderr = std::io::stderr();
        let out = (shown && stderr.is_terminal()).then_some(stderr);
        Progress::new(out, verb, Instant::now())
    }
}

impl<W: Write> Progress<W> {
    pub fn new(out: Option<W>, verb: &'static str, started: Instant) -> Self {
        Progress { out, verb, started, last_drawn: None, width: 0, share: None }
    }

    /// `count` records done so far, `share` (0 to 1) of all the work.
    pub fn update_share(&mut self, count: u64, share: f64) {
        self.share = Some(share.clamp(0.0, 1.0));
        self.update(count);
    }

    /// `count` records done so far.
    pub fn update(&mut self, count: u64) {
        self.update_at(Some(count), Instant::now());
    }

    /// Work with nothing to count (one long call): shows how long it has taken.
    pub fn tick(&mut self) {
        self.update_at(None, Instant::now());
    }

    /// Redraws unless the last drawing (or the start: work that is over at once shows nothing) is too recent.
    pub fn update_at(&mut self, count: Option<u64>, now: Instant) {
        let since = self.last_drawn.unwrap_or(self.started);
        if self.out.is_some() && now.saturating_duration_since(since) >= REDRAW_EVERY {
            self.draw(count, now);
        }
    }

    /// Leaves the final count on its own line, if progress was shown at all.
    pub fn finish(&mut self, count: u64) {
        self.finish_at(count, Instant::now());
    }

    pub fn finish_at(&mut self, count: u64, now: Instant) {
        if self.last_drawn.is_some() {
            self.draw(Some(count), now);
            self.end_line("\n");
        }
        self.out = None;
    }

    /// Erases the progress line, for work whose result says it all.
    pub fn clear(&mut self) {
        if self.last_drawn.is_some() {
            let blank = format!("\r{:width$}\r", "", width = self.width);
            self.end_line(&blank);
        }
        self.out = None;
    }

    fn draw(&mut self, count: Option<u64>, now: Instant) {
        let Some(out) = &mut self.out else { return };
        let mut text = line(self.verb, count, now.saturating_duration_since(self.started));
        if let Some(share) = self.share {
            text = format!("{} {text}", bar(share));
        }
        let pad = self.width.saturating_sub(text.chars().count());
        // A terminal that cannot be written to is no reason to fail the work it reports on.
        let _ = write!(out, "\r{text}{:pad$}", "").and_then(|()| out.flush());
        self.width = text.chars().count();
        self.last_drawn = Some(now);
    }

    fn end_line(&mut self, ending: &str) {
        if let Some(out) = &mut self.out {
            let _ = out.write_all(ending.as_bytes()).and_then(|()| out.flush());
        }
    }
}

impl<W: Write> Drop for Progress<W> {
    /// Work that ends in an error leaves the line as it was, and the error message starts a line of its own.
    fn drop(&mut self) {
        if self.last_drawn.is_some() {
            self.end_line("\n");
        }
    }
}

/// `[#####---------------]  25%`
fn bar(share: f64) -> String {
    const WIDTH: usize = 20;
    let filled = ((share * WIDTH as f64).round() as usize).min(WIDTH);
    format!("[{}{}] {:>3.0}%", "#".repeat(filled), "-".repeat(WIDTH - filled), share * 100.0)
}

fn line(verb: &str, count: Option<u64>, elapsed: Duration) -> String {
    match count {
        Some(count) => {
            let secs = elapsed.as_secs_f64();
            if secs > 0.0 {
                format!("{verb} {count} records ({:.0}/s)", count as f64 / secs)
            } else {
                format!("{verb} {count} records")
            }
        }
        // Tenths, so that every redraw shows the work is alive.
        None => format!("{verb}… {:.1}s", elapsed.as_secs_f64()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn redraws_in_place_at_most_ten_times_a_second_and_ends_the_line() {
        let start = Instant::now();
        let mut screen = Vec::new();
        let mut progress = Progress::new(Some(&mut screen), "exported", start);
        progress.update_at(Some(1_000), start + ms(50)); // too soon after the start
        progress.update_at(Some(45_000), start + ms(1_000));
        progress.update_at(Some(46_000), start + ms(1_050)); // too soon after the last drawing
        progress.update_at(Some(90_000), start + ms(2_000));
        progress.finish_at(123_456, start + ms(3_000));
        drop(progress);
        assert_eq!(
            String::from_utf8(screen).unwrap(),
            "\rexported 45000 records (45000/s)\rexported 90000 records (45000/s)\rexported 123456 records (41152/s)\n"
        );
    }

    #[test]
    fn work_of_known_size_draws_a_bar() {
        let start = Instant::now();
        let mut screen = Vec::new();
        let mut progress = Progress::new(Some(&mut screen), "generated", start);
        progress.share = Some(0.25);
        progress.update_at(Some(5_000), start + ms(500));
        drop(progress);
        assert_eq!(
            String::from_utf8(screen).unwrap(),
            "\r[#####---------------]  25% generated 5000 records (10000/s)\n"
        );
    }

    #[test]
    fn a_shorter_line_blanks_what_the_longer_one_left() {
        let start = Instant::now();
        let mut screen = Vec::new();
        let mut progress = Progress::new(Some(&mut screen), "verified", start);
        progress.update_at(Some(100), start + ms(100)); // 1000/s
        progress.update_at(Some(100), start + ms(10_000)); // 10/s: three characters shorter
        progress.finish_at(100, start + ms(10_000));
        drop(progress);
        let screen = String::from_utf8(screen).unwrap();
        assert_eq!(
            screen,
            "\rverified 100 records (1000/s)\rverified 100 records (10/s)  \rverified 100 records (10/s)\n"
        );
    }

    #[test]
    fn work_that_is_over_at_once_shows_nothing() {
        let start = Instant::now();
        let mut screen = Vec::new();
        let mut progress = Progress::new(Some(&mut screen), "exported", start);
        progress.update_at(Some(12), start + ms(10));
        progress.finish_at(12, start + ms(20));
        drop(progress);
        assert!(screen.is_empty(), "{:?}", String::from_utf8_lossy(&screen));
    }

    #[test]
    fn without_a_terminal_nothing_is_written() {
        let start = Instant::now();
        let mut progress = Progress::<Vec<u8>>::new(None, "exported", start);
        progress.update_at(Some(1), start + ms(500));
        progress.update_at(None, start + ms(1_000));
        progress.finish_at(2, start + ms(2_000));
        assert!(progress.last_drawn.is_none());
    }

    #[test]
    fn ticks_show_the_time_taken_and_clear_away() {
        let start = Instant::now();
        let mut screen = Vec::new();
        let mut progress = Progress::new(Some(&mut screen), "verifying the audit trail", start);
        progress.update_at(None, start + ms(1_500));
        progress.update_at(None, start + ms(12_000));
        progress.clear();
        drop(progress);
        let blank = " ".repeat("verifying the audit trail… 12.0s".chars().count());
        assert_eq!(
            String::from_utf8(screen).unwrap(),
            format!("\rverifying the audit trail… 1.5s\rverifying the audit trail… 12.0s\r{blank}\r")
        );
    }

    #[test]
    fn an_interrupted_line_is_ended_for_the_error_that_follows() {
        let start = Instant::now();
        let mut screen = Vec::new();
        let mut progress = Progress::new(Some(&mut screen), "exported", start);
        progress.update_at(Some(5_000), start + ms(500));
        drop(progress);
        assert_eq!(String::from_utf8(screen).unwrap(), "\rexported 5000 records (10000/s)\n");
    }
}
