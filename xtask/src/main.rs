//! `cargo xtask`: the project's automation. `main` only parses the command line and dispatches;
//! each verb lives in its own module. `cargo xtask --help` lists them.

mod bench;
mod build;
mod cache;
mod clones;
mod faults;
mod fuzz;
mod models;
mod reference;
mod security;
mod serve;
mod server;
mod setup;
mod test;
mod timing;
mod util;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Open Model Playground's automation: set-up, tests, builds, serving and benchmarks. Every
/// verb installs what it needs first (idempotently).
#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Subcommand)]
enum Verb {
    /// Set up, build the app and serve it at http://127.0.0.1:8080.
    Serve(serve::Args),
    /// Set up, then run every check and test (what CI runs); `--quick` or `--only` for less.
    Test(test::Args),
    /// Build the app into `dist/` (release, every worker build).
    Build,
    /// Install every tool and model the other verbs need, and nothing else.
    Setup,
    /// Fetch and verify the bundled models into `public/models/`.
    Models,
    /// Regenerate the llama.cpp reference records in `crates/engine/tests/data/`.
    Reference(reference::Args),
    /// Benchmarks: native against llama.cpp, the browser against wllama, kernel A/B timing.
    #[command(subcommand)]
    Bench(bench::Verb),
    /// Run the cargo-fuzz targets in `fuzz/` from their committed corpus.
    Fuzz(fuzz::Args),
    /// Where the shared cache is, and how large each part of it is.
    Cache,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let root = util::root();
    std::env::set_current_dir(&root)?;
    if let Some(code) = clones::ensure_own_build(&root)? {
        std::process::exit(code);
    }
    match cli.verb {
        Verb::Serve(a) => serve::run(&root, &a),
        Verb::Test(a) => test::run(&root, &a),
        Verb::Build => {
            let mut t = timing::Timer::default();
            setup::all(&root, &mut t)?;
            t.step("build", || build::app(&root))
        }
        Verb::Setup => {
            let mut t = timing::Timer::default();
            let r = setup::all(&root, &mut t);
            eprint!("{}", t.report());
            r
        }
        Verb::Models => models::ensure_all(&root),
        Verb::Reference(a) => reference::run(&root, &a),
        Verb::Bench(v) => bench::run(&root, v),
        Verb::Fuzz(a) => fuzz::run(&root, &a),
        Verb::Cache => cache::show(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn unknown_flags_and_verbs_are_refused() {
        assert!(Cli::try_parse_from(["cargo xtask", "test", "--bogus"]).is_err());
        assert!(Cli::try_parse_from(["cargo xtask", "tset"]).is_err());
        assert!(Cli::try_parse_from(["cargo xtask", "bench", "browser", "--typo"]).is_err());
        assert!(Cli::try_parse_from(["cargo xtask", "test", "--quick"]).is_ok());
        assert!(Cli::try_parse_from(["cargo xtask", "test", "--only", "lint,browser"]).is_ok());
        assert!(Cli::try_parse_from(["cargo xtask", "test", "--only", "nope"]).is_err());
        assert!(Cli::try_parse_from(["cargo xtask", "reference", "--only", "archs"]).is_ok());
        assert!(Cli::try_parse_from(["cargo xtask", "reference", "--only", "nope"]).is_err());
    }
}
