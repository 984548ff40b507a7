//! The only way out to the terminal. Inside this crate `println!`, `print!`, `eprintln!` and
//! `eprint!` are these macros, not the standard ones: whatever they format goes through
//! [`redact::clean`](crate::redact::clean) (known secrets replaced by fingerprints, control
//! characters escaped) before it is written. The standard macros and `std::io::stdout()` /
//! `stderr()` are forbidden elsewhere in the crate by clippy (`clippy.toml`), so no text can
//! take another way out.
//!
//! A write that fails (a closed pipe: `mlplat diff | head`) is dropped, where the standard
//! macros would panic.
#![allow(clippy::disallowed_macros, clippy::disallowed_methods)]

use std::io::Write;

/// Writes to stdout, cleaned.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::out(::std::format_args!($($arg)*), false) };
}

/// Writes a line to stdout, cleaned.
#[macro_export]
macro_rules! println {
    () => { $crate::console::out(::std::format_args!(""), true) };
    ($($arg:tt)*) => { $crate::console::out(::std::format_args!($($arg)*), true) };
}

/// Writes to stderr, cleaned.
#[macro_export]
macro_rules! eprint {
    ($($arg:tt)*) => { $crate::console::err(::std::format_args!($($arg)*), false) };
}

/// Writes a line to stderr, cleaned.
#[macro_export]
macro_rules! eprintln {
    () => { $crate::console::err(::std::format_args!(""), true) };
    ($($arg:tt)*) => { $crate::console::err(::std::format_args!($($arg)*), true) };
}

fn cleaned(args: std::fmt::Arguments<'_>, newline: bool) -> String {
    let mut text = match args.as_str() {
        Some(s) => crate::redact::clean(s),
        None => crate::redact::clean(&args.to_string()),
    };
    if newline {
        text.push('\n');
    }
    text
}

#[doc(hidden)]
pub fn out(args: std::fmt::Arguments<'_>, newline: bool) {
    let text = cleaned(args, newline);
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

#[doc(hidden)]
pub fn err(args: std::fmt::Arguments<'_>, newline: bool) {
    let text = cleaned(args, newline);
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Writes `text` to stderr with its control characters escaped but without the redaction
/// state: for the panic hook alone, whose text is mlplat's own words and a source location.
pub fn err_unredacted(text: &str) {
    let mut out = String::with_capacity(text.len());
    crate::redact::escape_into(text, &mut out);
    let _ = std::io::stderr().lock().write_all(out.as_bytes());
}

/// Flushes stdout (after a prompt written with `print!`).
pub fn flush() -> std::io::Result<()> {
    std::io::stdout().flush()
}

/// Whether stderr is a terminal (progress lines are then rewritten in place).
pub fn stderr_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
}

/// A progress line on a terminal: `\r`, erase the line, then the cleaned text. The terminal
/// control is mlplat's own, written around the text, never taken from it.
pub fn rewrite_line(args: std::fmt::Arguments<'_>, newline: bool) {
    let text = cleaned(args, newline);
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(b"\r\x1b[K");
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}
