//! A spinner while something without measurable progress runs.

use super::*;

/// A spinner (terminal) or a line (otherwise) while something without measurable
/// progress runs.
pub(crate) fn spinner(out: &Output, text: &str) -> Option<ProgressBar> {
    match out.style {
        Style::Spinner => {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("{spinner} {elapsed} {msg}") {
                bar.set_style(style);
            }
            bar.set_message(text.to_owned());
            bar.enable_steady_tick(Duration::from_millis(120));
            Some(bar)
        }
        Style::Lines => {
            out.note(&format!("{text}..."));
            None
        }
        Style::Off => None,
    }
}
