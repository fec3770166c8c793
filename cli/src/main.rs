//! `credpool`: manage credential pools in the shared store (like `hermes auth`), and
//! `credpool simulate`: run a scenario against the real engine and compare policies.

mod config;
mod dotenv;
mod exit;
mod files;
mod hermes;
mod hermes_config;
mod interactive;
mod login;
mod manage;
mod output;
mod pkce;
mod prompt;
mod seed;
mod simulate;
mod target;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand};

use crate::config::{PolicyArg, StrategyArg};
use crate::exit::{CliResult, Exit};
use crate::manage::{AddArgs, Ctx};
use crate::seed::SeedArgs;

/// The exit statuses and the error format, shown by `--help`.
const EXIT_CODES: &str = "\
Exit status:
  0  success
  1  runtime error: a file could not be read or written (io), internal error
  2  usage error: bad arguments, unknown provider (with a \"did you mean\"), unknown
     target, ambiguous label, invalid value
  3  the store stayed locked by another process past --lock-timeout-ms (safe to retry)
  4  a data file is not valid (the store or a given file: corrupt JSON, foreign document,
     newer schema, too large); it was left untouched

Every error is one line on stderr: `credpool: <message> [<code>]`. A failing command
writes nothing. Secrets are never printed (list and --json show no keys); the only
command that outputs them is export-hermes, into a file or a non-terminal stdout.

Targets (remove, reset, priority): an entry id, else a case-insensitive label (an
ambiguous label is an error), else a 1-based index as shown by `credpool list`.

The store: --store PATH, else $CREDPOOL_HOME/pools.sqlite, else
$XDG_CONFIG_HOME/credpool/pools.sqlite, else ~/.config/credpool/pools.sqlite (a pools.json
of an earlier version found there is migrated into it).";

/// Command line of `credpool`.
#[derive(Debug, Parser)]
#[command(
    name = "credpool",
    version,
    about = "Credential pools for LLM agents",
    long_about = "Credential pools for LLM agents: manage the API keys and OAuth logins \
                  that agents rotate through, in the store file every process shares. \
                  Without a subcommand on a terminal: an interactive menu.",
    after_long_help = EXIT_CODES
)]
struct Cli {
    /// The store (default: $CREDPOOL_HOME/pools.sqlite, else
    /// $XDG_CONFIG_HOME/credpool/pools.sqlite, else ~/.config/credpool/pools.sqlite).
    #[arg(long, global = true, value_name = "PATH")]
    store: Option<PathBuf>,
    /// Longest wait for the store's lock held by another process.
    #[arg(long, global = true, value_name = "MS", default_value_t = 10_000)]
    lock_timeout_ms: u64,
    /// Print JSON (for scripts) instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// What to do (none on a terminal: the interactive menu).
    #[command(subcommand)]
    command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// List every pool (or one): index, label, auth type, id, priority, source, status
    /// with time left; `←` marks the entry the next request would use.
    List {
        /// Only this provider's pool.
        provider: Option<String>,
    },
    /// Add a credential (an API key, prompted without echo unless given).
    Add(AddArgs),
    /// Log in with a provider's own flow and add the entry: a browser login (anthropic,
    /// openrouter, openai-codex --browser) or a device code (openai-codex, xai-oauth,
    /// nous, qwen-oauth, minimax-oauth); core's built-in refresher keeps it fresh.
    Login(login::LoginArgs),
    /// Refresh OAuth entries now with the built-in refresher (single-flight with every
    /// other process; a token rotated elsewhere is adopted).
    Refresh {
        /// Provider.
        provider: String,
        /// Entry id, label or 1-based index (every OAuth entry of the pool when absent).
        target: Option<String>,
    },
    /// Remove a credential.
    Remove {
        /// Provider.
        provider: String,
        /// Entry id, label or 1-based index.
        target: String,
    },
    /// Clear the status and cooldowns of one credential, or of the whole pool.
    Reset {
        /// Provider.
        provider: String,
        /// Entry id, label or 1-based index (all when absent).
        target: Option<String>,
    },
    /// Set a credential's priority (lower is tried first).
    Priority {
        /// Provider.
        provider: String,
        /// Entry id, label or 1-based index.
        target: String,
        /// New priority.
        #[arg(allow_negative_numbers = true)]
        priority: i64,
    },
    /// Show or set a pool's selection strategy.
    Strategy {
        /// Provider.
        provider: String,
        /// New strategy (none: print the current one).
        #[arg(value_enum)]
        value: Option<StrategyArg>,
    },
    /// Show or set a pool's outcome policy preset.
    Policy {
        /// Provider.
        provider: String,
        /// New preset (none: print the current one).
        #[arg(value_enum)]
        value: Option<PolicyArg>,
    },
    /// Adopt keys from the environment (OPENROUTER_API_KEY, ANTHROPIC_API_KEY, ...) and a
    /// config file of custom endpoints; never removes anything.
    Seed(SeedArgs),
    /// Merge the credential pools of a Hermes Agent auth.json into the store.
    ImportHermes(hermes::ImportArgs),
    /// Write the store's pools as a Hermes Agent auth.json.
    ExportHermes(hermes::ExportArgs),
    /// Run a scenario against the engine with a simulated provider and compare policies.
    Simulate(simulate::SimulateArgs),
}

/// Parses the command line, runs it, and turns an error into its one line and exit status.
fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => e.report(),
    }
}

/// Runs the parsed command line.
fn run(cli: Cli) -> CliResult<ExitCode> {
    let ctx = || -> CliResult<Ctx> {
        let path = match &cli.store {
            Some(path) => path.clone(),
            None => credpool_store::default_path()?,
        };
        Ok(Ctx {
            path,
            lock_timeout: Duration::from_millis(cli.lock_timeout_ms),
            json: cli.json,
        })
    };
    let Some(command) = &cli.command else {
        if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
            interactive::run(&ctx()?)?;
            return Ok(ExitCode::SUCCESS);
        }
        let help = Cli::command().render_help();
        eprintln!("{help}");
        eprintln!("credpool: no subcommand and not a terminal (see --help) [usage]");
        return Ok(Exit::Usage.code());
    };
    match command {
        Command::Simulate(args) => return Ok(simulate::run(args)),
        Command::List { provider } => manage::list(&ctx()?, provider.as_deref())?,
        Command::Add(args) => manage::add(&ctx()?, args)?,
        Command::Login(args) => login::login(&ctx()?, args)?,
        Command::Refresh { provider, target } => {
            login::refresh(&ctx()?, provider, target.as_deref())?;
        }
        Command::Remove { provider, target } => manage::remove(&ctx()?, provider, target)?,
        Command::Reset { provider, target } => {
            manage::reset(&ctx()?, provider, target.as_deref())?;
        }
        Command::Priority {
            provider,
            target,
            priority,
        } => manage::priority(&ctx()?, provider, target, *priority)?,
        Command::Strategy { provider, value } => config::strategy(&ctx()?, provider, *value)?,
        Command::Policy { provider, value } => config::policy(&ctx()?, provider, *value)?,
        Command::Seed(args) => seed::seed(&ctx()?, args)?,
        Command::ImportHermes(args) => hermes::import(&ctx()?, args)?,
        Command::ExportHermes(args) => hermes::export(&ctx()?, args)?,
    }
    Ok(ExitCode::SUCCESS)
}
