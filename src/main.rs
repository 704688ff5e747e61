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
        app.run_until(startup::shutdown_signal()).await
    })
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
