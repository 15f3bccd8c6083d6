//! What `recall import` shows while it runs: a progress line on a
//! terminal, plain log lines otherwise (or nothing, for tests).

use std::io::IsTerminal as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Summary;

/// Where progress goes.
#[derive(Debug)]
pub struct Progress {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Bar(ProgressBar),
    Lines {
        last: Mutex<Instant>,
        every: Duration,
        /// What each line starts with (the command).
        label: &'static str,
    },
    Silent,
}

impl Progress {
    /// A progress bar when standard error is a terminal, log lines every
    /// few seconds otherwise.
    pub fn auto() -> Self {
        Self::auto_for("recall import")
    }

    /// As [`auto`](Self::auto), the plain lines starting with `label`
    /// (another command's name, e.g. `recall migrate-store`).
    pub fn auto_for(label: &'static str) -> Self {
        if std::io::stderr().is_terminal() {
            Self::bar()
        } else {
            Self::lines_for(label, Duration::from_secs(5))
        }
    }

    /// A live line on standard error (a spinner: the total is not known
    /// before the listing ends).
    pub fn bar() -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(200));
        Self {
            kind: Kind::Bar(bar),
        }
    }

    /// A plain line on standard error at most every `every`, and at each
    /// note.
    pub fn lines(every: Duration) -> Self {
        Self::lines_for("recall import", every)
    }

    fn lines_for(label: &'static str, every: Duration) -> Self {
        Self {
            kind: Kind::Lines {
                last: Mutex::new(Instant::now()),
                every,
                label,
            },
        }
    }

    /// Nothing shown.
    pub fn silent() -> Self {
        Self { kind: Kind::Silent }
    }

    /// The counts changed.
    pub fn update(&self, counts: &Summary) {
        self.status(|| counts.line());
    }

    /// The live line is now `line()` (computed only when shown).
    pub fn status(&self, line: impl FnOnce() -> String) {
        match &self.kind {
            Kind::Bar(bar) => bar.set_message(line()),
            Kind::Lines { last, every, label } => {
                let mut last = last
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if last.elapsed() >= *every {
                    *last = Instant::now();
                    eprintln!("{label}: {}", line());
                }
            }
            Kind::Silent => {}
        }
    }

    /// A line worth keeping (a skipped conversation, a phase).
    pub fn note(&self, line: &str) {
        match &self.kind {
            Kind::Bar(bar) => bar.println(line),
            Kind::Lines { label, .. } => eprintln!("{label}: {line}"),
            Kind::Silent => {}
        }
    }

    /// Clears the live line (before the final summary).
    pub fn finish(&self) {
        if let Kind::Bar(bar) = &self.kind {
            bar.finish_and_clear();
        }
    }
}
