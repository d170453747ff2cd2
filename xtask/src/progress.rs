//! Progress bars on stderr (indicatif). On a terminal: a live bar with position, message and
//! ETA. Otherwise (CI, pipes, tests): one plain line every ~10% of the work.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress display for `total` units of work labelled `label`.
pub struct Progress {
    bar: Option<ProgressBar>,
    label: String,
    total: u64,
    next_line: u64,
    start: Instant,
}

impl Progress {
    /// A bar (terminal) or a line printer (otherwise) for `total` units.
    pub fn new(label: &str, total: u64, unit: &str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let template = format!(
                "{{prefix:>10}} [{{bar:30.cyan/blue}}] {{pos:>7}}/{{len}} {unit} {{msg}} | {{elapsed_precise}} ETA {{eta}}"
            );
            if let Ok(style) = ProgressStyle::with_template(&template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(label.to_string());
            bar
        });
        Self {
            bar,
            label: label.to_string(),
            total: total.max(1),
            next_line: total.div_ceil(10).max(1),
            start: Instant::now(),
        }
    }

    /// Report position `pos`; `msg` (e.g. the loss) is built only when it is shown.
    pub fn update(&mut self, pos: u64, msg: impl FnOnce() -> String) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(pos);
                // Refresh the message ~200 times per run: cheap and readable.
                if pos.is_multiple_of((self.total / 200).max(1)) || pos == self.total {
                    bar.set_message(msg());
                }
            }
            None => {
                if pos >= self.next_line || pos == self.total {
                    let secs = self.start.elapsed().as_secs_f64();
                    let eta = secs / pos.max(1) as f64 * (self.total - pos.min(self.total)) as f64;
                    eprintln!(
                        "  {}: {pos}/{} ({:.0}%) {} | {secs:.1} s, ETA {eta:.0} s",
                        self.label,
                        self.total,
                        100.0 * pos as f64 / self.total as f64,
                        msg()
                    );
                    while self.next_line <= pos {
                        self.next_line += self.total.div_ceil(10).max(1);
                    }
                }
            }
        }
    }

    /// Remove the bar (the final line stays on a terminal).
    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish();
        }
    }
}
