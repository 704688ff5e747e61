//! The `peil` command: configuration → telemetry → storage → HTTP and jobs.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use peil::config::Settings;
use peil::domain::{EmailAddress, Language, MinGroupSize, OrganisationName, Role, TimeZone};
use peil::org::NewOrganisation;
use peil::startup::{self, Application};
use peil::{admin, telemetry};

/// Anonymous pulse surveys, reported per team.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// A configuration file laid over the built-in defaults (see config/).
    #[arg(long, global = true, env = "PEIL_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Administration from the shell.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Fill the database with a realistic synthetic organisation.
    Demo {
        /// How many people (1 to 1,000,000).
        #[arg(long, default_value_t = 500)]
        people: usize,
        /// The same seed gives the same organisation.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Years of history before today.
        #[arg(long, default_value_t = 3)]
        years: u32,
        /// Past waves of the demo pulse, answered and closed, one every
        /// two weeks before today (0 to 52).
        #[arg(long, default_value_t = 9)]
        waves: usize,
        /// People per leaf team, on average (2 to 1,000).
        #[arg(long, default_value_t = peil::demo::TEAM_SIZE)]
        team_size: usize,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an organisation.
    CreateOrganisation {
        #[arg(long)]
        name: String,
        /// nl or en.
        #[arg(long, default_value = "en")]
        language: String,
        /// An IANA zone such as Europe/Amsterdam.
        #[arg(long, default_value = "Europe/Amsterdam")]
        time_zone: String,
        /// The minimum group size k (at least 3).
        #[arg(long, default_value_t = 5)]
        min_group_size: i64,
    },
    /// List organisations with their ids.
    ListOrganisations,
    /// Create an account and print its one-time password.
    CreateAccount {
        /// The organisation's id (see list-organisations).
        #[arg(long)]
        organisation: String,
        #[arg(long)]
        email: String,
        /// admin or hr.
        #[arg(long)]
        role: String,
    },
    /// Give an account a new one-time password and end its sessions.
    ResetPassword {
        #[arg(long)]
        email: String,
    },
}

/// sysexits.h EX_CONFIG: the configuration is wrong, not the program.
const EXIT_CONFIG: u8 = 78;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("peil: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    telemetry::init(&settings.log);
    let outcome = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings),
        Command::Migrate => startup::prepare_storage(&settings, false).map(|_| {
            tracing::info!("database is up to date");
        }),
        Command::Admin(command) => run_admin(&settings, command),
        Command::Demo {
            people,
            seed,
            years,
            waves,
            team_size,
        } => demo(
            settings,
            peil::demo::DemoSpec {
                people,
                seed,
                years,
                today: chrono::Utc::now().date_naive(),
                waves,
                team_size,
            },
        ),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("peil: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(settings: Settings) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let shutdown = startup::shutdown_signal();
        let mut app = Application::build(settings).await?;
        if let Some(admin) = app.take_initial_admin() {
            // Printed, not logged: shown once to whoever started Peil, never stored in clear.
            println!(
                "\nPeil created the organisation \"{}\" and its first admin account.\n  email:              {}\n  one-time password:  {}\nSign in with POST /api/v1/auth/login and set a new password with POST /api/v1/auth/password.\nThis password is shown only now.\n",
                admin.organisation_name,
                admin.email,
                admin.password.expose()
            );
        }
        app.run_until(shutdown).await
    })
}

fn demo(mut settings: Settings, spec: peil::demo::DemoSpec) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=1_000_000).contains(&spec.people),
        "--people must be between 1 and 1,000,000"
    );
    anyhow::ensure!(
        (1..=20).contains(&spec.years),
        "--years must be between 1 and 20"
    );
    anyhow::ensure!(spec.waves <= 52, "--waves must be between 0 and 52");
    anyhow::ensure!(
        (2..=1_000).contains(&spec.team_size),
        "--team-size must be between 2 and 1,000"
    );
    let (db, _) = startup::prepare_storage(&settings, false)?;
    let keys = settings.server_keys()?;
    let bar = indicatif::ProgressBar::new(spec.people as u64).with_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {msg} [{bar:40}] {pos}/{len} people, {per_sec}, eta {eta}",
        )?
        .progress_chars("=> "),
    );
    bar.set_message("generating");
    let started = std::time::Instant::now();
    let summary = peil::demo::generate(&db, &keys, &spec, |done| bar.set_position(done as u64))?;
    bar.finish_and_clear();
    println!(
        "Created the organisation \"{}\" ({}) in {:.1} s:",
        summary.organisation_name,
        summary.organisation_id,
        started.elapsed().as_secs_f64()
    );
    println!(
        "  {} teams in {} levels; {} people ({} active, {} left)",
        summary.teams,
        summary.depth,
        summary.people,
        summary.active,
        summary.people - summary.active
    );
    let events: Vec<String> = summary
        .events
        .iter()
        .map(|(kind, n)| format!("{n} {kind}"))
        .collect();
    println!("  history: {}", events.join(", "));
    println!(
        "  pulse: {} ({}), next wave {}",
        summary.pulse_name,
        summary.pulse_id,
        summary.next_wave_at.map_or_else(
            || "none scheduled".to_owned(),
            |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    );
    println!(
        "  {} past waves answered and closed ({} responses): results, heatmaps and trends to read",
        summary.past_waves, summary.responses
    );
    println!("Accounts (one-time passwords, shown only now; set a new one at first sign-in):");
    for (role, email, password) in &summary.accounts {
        println!("  {:<8} {email:<40} {}", role.as_str(), password.expose());
    }
    println!("Start the service with `peil serve` and sign in with POST /api/v1/auth/login.");
    Ok(())
}

fn run_admin(settings: &Settings, command: AdminCommand) -> anyhow::Result<()> {
    let (db, _) = startup::prepare_storage(settings, false)?;
    match command {
        AdminCommand::CreateOrganisation {
            name,
            language,
            time_zone,
            min_group_size,
        } => {
            let new = NewOrganisation {
                name: OrganisationName::parse(&name).map_err(|e| anyhow::anyhow!("--name {e}"))?,
                default_language: language
                    .parse::<Language>()
                    .map_err(|e| anyhow::anyhow!("--language {e}"))?,
                time_zone: TimeZone::parse(&time_zone)
                    .map_err(|e| anyhow::anyhow!("--time-zone {e}"))?,
                min_group_size: MinGroupSize::new(min_group_size)
                    .map_err(|e| anyhow::anyhow!("--min-group-size {e}"))?,
            };
            let id = admin::create_organisation(&db, &new)?;
            println!("{id}");
        }
        AdminCommand::ListOrganisations => {
            for org in admin::list_organisations(&db)? {
                println!("{}\t{}", org.id, org.name);
            }
        }
        AdminCommand::CreateAccount {
            organisation,
            email,
            role,
        } => {
            let email = EmailAddress::parse(&email).map_err(|e| anyhow::anyhow!("--email {e}"))?;
            let role = role
                .parse::<Role>()
                .map_err(|e| anyhow::anyhow!("--role {e}"))?;
            let password = admin::create_account(&db, &organisation, &email, role)?;
            println!(
                "Account {email} ({role}) created.\n  one-time password: {}\nIt must be changed at first sign-in.",
                password.expose()
            );
        }
        AdminCommand::ResetPassword { email } => {
            let email = EmailAddress::parse(&email).map_err(|e| anyhow::anyhow!("--email {e}"))?;
            let password = admin::reset_password(&db, &email)?;
            println!(
                "Password of {email} reset; its sessions are ended.\n  one-time password: {}\nIt must be changed at first sign-in.",
                password.expose()
            );
        }
    }
    Ok(())
}
