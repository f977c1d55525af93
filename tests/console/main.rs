//! The console in a real browser: headless Chromium (Debian's package,
//! installed by scripts/chromium.sh) driven over WebDriver, against the real
//! server. Screenshots of the main pages land in
//! `target/console-screenshots/`.

#[path = "../common/mod.rs"]
mod common;

const BACKEND: common::Backend = common::Backend::Embedded;

mod browser;
mod pages;
