//! The command line: global connection flags and one subcommand per
//! protocol command, named like the protocol (`promotion.create` is
//! `gradebook promotion create`). The shell parses its lines with the same
//! definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::serve::ServeArgs;

const TOP_EXAMPLES: &str = "\
Examples:
  gradebook serve                                   start a server (TLS, port 7302)
  gradebook login admin                             log in; the session is saved
  gradebook promotion create RT2-2026 --year 2026
  gradebook import students students.csv --promotion RT2-2026
  gradebook import grades grades.csv --promotion RT2-2026
  gradebook promotion average RT2-2026              statistics and histogram
  gradebook shell                                   the same commands, interactively
  gradebook --encoding msgpack student show 12      MessagePack on the wire, same output
  gradebook --udp --plaintext student show 12       one UDP datagram each way (plaintext server)
  gradebook --quic student show 12                  over QUIC: one encrypted stream per request

Exit status: 0 ok, 1 the server answered an error (or an import found bad lines),
2 usage error, 3 connection or TLS failure.";

/// Promotions, students, grades and averages: the gradebook server and client.
#[derive(Debug, Parser)]
#[command(
    name = "gradebook",
    version,
    long_about = None,
    after_help = TOP_EXAMPLES,
    max_term_width = 100
)]
pub struct Cli {
    /// Connection and output settings.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// `gradebook serve` alone, parsed without the client's flags (it has its
/// own `--plaintext`, and `--server` would only confuse its help).
#[derive(Debug, Parser)]
#[command(name = "gradebook", version, max_term_width = 100)]
pub struct ServeCli {
    /// Only `serve`.
    #[command(subcommand)]
    pub command: ServeOnly,
}

/// See [`ServeCli`].
#[derive(Debug, Subcommand)]
pub enum ServeOnly {
    /// Run the server (TLS on 0.0.0.0:7302 and data in ./gradebook-data by default).
    Serve(ServeArgs),
}

/// How to reach the server and how to print; accepted before or after the
/// subcommand.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct Global {
    /// The server's address (the port defaults to 7302).
    #[arg(
        long,
        global = true,
        help_heading = "Connection and output",
        env = "GRADEBOOK_SERVER",
        default_value = "localhost:7302",
        value_name = "HOST:PORT"
    )]
    pub server: String,
    /// Connect without TLS, to a server started with `gradebook serve --plaintext`.
    #[arg(
        long,
        global = true,
        help_heading = "Connection and output",
        env = "GRADEBOOK_PLAINTEXT",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub plaintext: bool,
    /// Trust the server's certificate when signed by this certificate authority (PEM).
    #[arg(
        long,
        global = true,
        help_heading = "Connection and output",
        env = "GRADEBOOK_CA_CERT",
        value_name = "FILE",
        conflicts_with = "plaintext"
    )]
    pub ca_cert: Option<PathBuf>,
    /// Trust the server's certificate when it has this SHA-256 fingerprint.
    #[arg(
        long,
        global = true,
        help_heading = "Connection and output",
        env = "GRADEBOOK_ACCEPT_FINGERPRINT",
        value_name = "SHA256:HEX"
    )]
    pub accept_fingerprint: Option<String>,
    /// Print the server's data as JSON, unchanged, for scripts.
    #[arg(long, global = true, help_heading = "Connection and output")]
    pub json: bool,
    /// The encoding on the wire: json, or msgpack (MessagePack, smaller); what is
    /// printed is the same either way.
    #[arg(
        long,
        global = true,
        help_heading = "Connection and output",
        env = "GRADEBOOK_ENCODING",
        value_enum,
        default_value = "json",
        value_name = "ENCODING",
        hide_possible_values = true
    )]
    pub encoding: WireEncoding,
    /// Send each request in a UDP datagram instead of a TCP connection (one-shot
    /// commands only, not shell, import or export). UDP carries session tokens
    /// only to a --plaintext server; a TLS server refuses all but ping and hello.
    #[arg(
        long,
        global = true,
        help_heading = "Connection and output",
        env = "GRADEBOOK_UDP",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub udp: bool,
    /// Speak QUIC to the server instead of TCP (TLS servers): one encrypted
    /// stream per request, on the server's QUIC port (its TCP port + 1 unless
    /// --quic-port). The server's certificate is trusted as over TCP.
    #[arg(
        long,
        global = true,
        help_heading = "Connection and output",
        env = "GRADEBOOK_QUIC",
        value_parser = clap::builder::BoolishValueParser::new(),
        conflicts_with_all = ["plaintext", "udp"]
    )]
    pub quic: bool,
    /// With --quic: the server's QUIC port, when it is not the TCP port + 1
    /// (the quic= of the server's listening line).
    #[arg(
        long,
        global = true,
        help_heading = "Connection and output",
        env = "GRADEBOOK_QUIC_PORT",
        value_name = "PORT"
    )]
    pub quic_port: Option<u16>,
}

/// The wire encoding of `--encoding`. It is the very type of `gradebook
/// bench --encoding`: clap shares a global argument's value with a
/// subcommand's argument of the same name, so both must have one type
/// (`gradebook --encoding msgpack bench` then benchmarks MessagePack).
pub type WireEncoding = crate::bench::BenchEncoding;

/// Every command of the `gradebook` binary.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (TLS on 0.0.0.0:7302 and data in ./gradebook-data by default).
    Serve(ServeArgs),
    /// Load-test a server: requests/s and latency percentiles, like redis-benchmark.
    Bench(crate::bench::BenchArgs),
    /// Log in; the session token is saved for this server (auth.login).
    #[command(after_help = "\
Examples:
  gradebook login admin
  GRADEBOOK_PASSWORD=... gradebook login admin        for scripts
  echo \"$PASSWORD\" | gradebook login admin            the password from standard input")]
    Login(LoginArgs),
    /// Log out: revoke the saved session and forget its token (auth.logout).
    #[command(after_help = "Example:\n  gradebook logout")]
    Logout,
    /// Who the saved session belongs to (auth.whoami).
    #[command(after_help = "Example:\n  gradebook whoami")]
    Whoami,
    /// Sessions, named like the protocol: auth login, logout, whoami.
    #[command(
        subcommand,
        after_help = "Examples:\n  gradebook auth login admin\n  gradebook auth whoami"
    )]
    Auth(AuthCommand),
    /// Check that the server answers, and how fast (ping).
    #[command(after_help = "Example:\n  gradebook ping --server gradebook.example.org")]
    Ping,
    /// The server's name, version and protocol (hello).
    #[command(after_help = "Example:\n  gradebook hello")]
    Hello,
    /// Accounts: create, list, delete, password (admin, except your own password).
    #[command(
        subcommand,
        after_help = "Examples:\n  gradebook user create dupont --role teacher\n  gradebook user list"
    )]
    User(UserCommand),
    /// Promotions (cohorts): create, list, show, average, subjects, delete, grant, revoke.
    #[command(
        subcommand,
        after_help = "Examples:\n  gradebook promotion create RT2-2026 --year 2026\n  gradebook promotion average RT2-2026"
    )]
    Promotion(PromotionCommand),
    /// Students: add, list, show, average, explain, update, remove.
    #[command(
        subcommand,
        after_help = "Examples:\n  gradebook student add RT2-2026 Alice Dupont\n  gradebook student show 12"
    )]
    Student(StudentCommand),
    /// Grades: add, list, update, delete.
    #[command(
        subcommand,
        after_help = "Examples:\n  gradebook grade add 12 Networks 14.5 --coef 2\n  gradebook grade list 12"
    )]
    Grade(GradeCommand),
    /// The record of grade changes.
    #[command(
        subcommand,
        after_help = "Example:\n  gradebook audit list --promotion RT2-2026"
    )]
    Audit(AuditCommand),
    /// Print grade events as they happen (watch): a student's own grades as they are published, a promotion's for its teachers.
    #[command(after_help = "\
Examples:
  gradebook watch                          a student: their own grades
  gradebook watch --promotion RT2-2026     a teacher: every event of a promotion
  gradebook watch --student 12 --since 0   everything since the log began, then live
  gradebook watch --json                   one JSON line per event, for scripts
  gradebook --quic watch                   over QUIC: events on a stream of their own

It reconnects by itself after a dropped connection or a server restart, and
resumes where it stopped: no event is missed or shown twice. Ctrl-C stops it.")]
    Watch(WatchArgs),
    /// Import students or grades from a CSV, .xlsx or .ods file (checked and written by the server).
    #[command(
        subcommand,
        after_help = "Examples:\n  gradebook import students students.csv --promotion RT2-2026\n  gradebook import grades grades.csv --promotion RT2-2026 --dry-run"
    )]
    Import(ImportCommand),
    /// Export a promotion's students and grades as CSV or .xlsx.
    #[command(
        subcommand,
        after_help = "Example:\n  gradebook export promotion RT2-2026 -o rt2.csv"
    )]
    Export(ExportCommand),
    /// An interactive shell with the same commands over one connection.
    Shell(ShellArgs),
    /// Print a completion script for your shell.
    #[command(after_help = "\
Examples:
  gradebook completions bash > ~/.local/share/bash-completion/completions/gradebook
  gradebook completions zsh > ~/.zfunc/_gradebook
  gradebook completions fish > ~/.config/fish/completions/gradebook.fish")]
    Completions(CompletionsArgs),
    /// Copy a running (or stopped) server's SQLite database, consistently, to a new file.
    #[command(after_help = "\
Examples:
  gradebook backup /var/backups/gradebook-2026-12-01.db --data /var/lib/gradebook
  gradebook backup nightly.db          the database in ./gradebook-data

Restoring: stop the server, remove DATA/gradebook.db-wal and DATA/gradebook.db-shm
if they are there, copy the backup to DATA/gradebook.db, start the server.")]
    Backup(BackupArgs),
    /// Copy a stopped server's SQLite data into an empty PostgreSQL database, and verify the copy.
    #[command(after_help = "\
Example:
  gradebook migrate --data /var/lib/gradebook --to postgres://gradebook@db.example.org/gradebook

Stop the server first. Everything is copied in one transaction (accounts and their
password hashes, sessions, promotions, grants, students, grades, their ids, the change
log with its hash chain) and committed only once the counts and the chain match the
source's; a target that holds anything is refused and left untouched. Then start
servers with --database and the same URL.")]
    Migrate(MigrateArgs),
    /// Print the SHA-256 fingerprint of a certificate file, as clients see it.
    #[command(after_help = "\
Example (on the server, to tell users what to expect on first connection):
  gradebook fingerprint gradebook-data/server-cert.pem")]
    Fingerprint(FingerprintArgs),
}

/// `gradebook watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Only this promotion's events.
    #[arg(long, conflicts_with = "student")]
    pub promotion: Option<String>,
    /// Only this student's events (a student: their own, the default).
    #[arg(long)]
    pub student: Option<i64>,
    /// First every event after this change-log position, then live ones.
    #[arg(long, value_name = "SEQ")]
    pub since: Option<i64>,
}

/// `gradebook login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Your user name (asked when left out).
    pub username: Option<String>,
}

/// `gradebook auth ...`.
#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Log in; the session token is saved for this server.
    #[command(after_help = "Example:\n  gradebook auth login admin")]
    Login(LoginArgs),
    /// Revoke the saved session and forget its token.
    #[command(after_help = "Example:\n  gradebook auth logout")]
    Logout,
    /// Who the saved session belongs to.
    #[command(after_help = "Example:\n  gradebook auth whoami")]
    Whoami,
}

/// A role, as `user create --role` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    /// Everything, including accounts.
    Admin,
    /// The promotions they created or were granted.
    Teacher,
    /// Their own record (link it with --student).
    Student,
}

impl RoleArg {
    /// The role's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            RoleArg::Admin => "admin",
            RoleArg::Teacher => "teacher",
            RoleArg::Student => "student",
        }
    }
}

/// `gradebook user ...`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account.
    ///
    /// Its password is asked twice (or read from GRADEBOOK_NEW_PASSWORD, or from
    /// standard input when it is not a terminal).
    #[command(after_help = "\
Examples:
  gradebook user create dupont --role teacher
  gradebook user create alice --role student --student 12")]
    Create {
        /// The login name (no spaces).
        username: String,
        /// What the account may do.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// The student record of a student account (its id).
        #[arg(long, value_name = "ID")]
        student: Option<i64>,
    },
    /// List accounts.
    #[command(after_help = "Example:\n  gradebook user list")]
    List,
    /// Delete an account.
    #[command(after_help = "Example:\n  gradebook user delete dupont")]
    Delete {
        /// The login name.
        username: String,
    },
    /// Change your password, or (admin) someone else's.
    ///
    /// That user's sessions are closed.
    #[command(after_help = "\
Examples:
  gradebook user password                  your own: the old one, then the new one twice
  gradebook user password --user dupont    an admin resets dupont's

Without a terminal, the old then the new password are read from GRADEBOOK_PASSWORD and
GRADEBOOK_NEW_PASSWORD, or one per line from standard input.")]
    Password {
        /// Whose password (admin only); yours when left out.
        #[arg(long = "user", value_name = "USERNAME")]
        username: Option<String>,
    },
}

/// `gradebook promotion ...`.
#[derive(Debug, Subcommand)]
pub enum PromotionCommand {
    /// Create a promotion.
    #[command(after_help = "\
Examples:
  gradebook promotion create RT2-2026 --year 2026
  gradebook promotion create RT1-2027 --description \"Réseaux et télécoms, 1st year\"
  gradebook promotion create RT2-2026 --publication manual    grades hidden until published")]
    Create {
        /// Its unique name (1–64 characters).
        name: String,
        /// Its year.
        #[arg(long, allow_negative_numbers = true)]
        year: Option<i64>,
        /// A description.
        #[arg(long)]
        description: Option<String>,
        /// When new grades become visible to students: immediate (default) or manual (once published).
        #[arg(long, value_name = "MODE")]
        publication: Option<String>,
    },
    /// Change a promotion's year, description or publication mode.
    #[command(after_help = "\
Examples:
  gradebook promotion update RT2-2026 --publication manual
  gradebook promotion update RT2-2026 --year 2027 --clear-description")]
    Update {
        /// The promotion's name.
        name: String,
        /// New year.
        #[arg(long, allow_negative_numbers = true, conflicts_with = "clear_year")]
        year: Option<i64>,
        /// Remove the year.
        #[arg(long)]
        clear_year: bool,
        /// New description.
        #[arg(long, conflicts_with = "clear_description")]
        description: Option<String>,
        /// Remove the description.
        #[arg(long)]
        clear_description: bool,
        /// immediate (new grades visible at once) or manual (visible once published).
        #[arg(long, value_name = "MODE")]
        publication: Option<String>,
    },
    /// Freeze a promotion's students and grades (after the jury); reads still work.
    #[command(after_help = "Example:\n  gradebook promotion lock RT2-2026")]
    Lock {
        /// The promotion's name.
        name: String,
    },
    /// Let a locked promotion change again (admin).
    #[command(after_help = "Example:\n  gradebook promotion unlock RT2-2026")]
    Unlock {
        /// The promotion's name.
        name: String,
    },
    /// List promotions (a teacher sees theirs).
    #[command(after_help = "Example:\n  gradebook promotion list")]
    List,
    /// A promotion's students by rank, with their averages.
    #[command(after_help = "Example:\n  gradebook promotion show RT2-2026")]
    Show {
        /// The promotion's name.
        name: String,
    },
    /// The promotion's average, statistics, and the histogram of student averages.
    #[command(after_help = "Example:\n  gradebook promotion average RT2-2026")]
    Average {
        /// The promotion's name.
        name: String,
    },
    /// Per-subject statistics.
    #[command(after_help = "Example:\n  gradebook promotion subjects RT2-2026")]
    Subjects {
        /// The promotion's name.
        name: String,
    },
    /// Delete a promotion (with --force, also its students and grades).
    #[command(after_help = "\
Examples:
  gradebook promotion delete RT2-2025
  gradebook promotion delete RT2-2025 --force     also when it has students")]
    Delete {
        /// The promotion's name.
        name: String,
        /// Delete it even if it has students (their grades go too).
        #[arg(long)]
        force: bool,
    },
    /// Let a teacher manage a promotion (admin).
    #[command(after_help = "Example:\n  gradebook promotion grant RT2-2026 dupont")]
    Grant {
        /// The promotion's name.
        name: String,
        /// The teacher's user name.
        username: String,
    },
    /// Take a promotion back from a teacher (admin).
    #[command(after_help = "Example:\n  gradebook promotion revoke RT2-2026 dupont")]
    Revoke {
        /// The promotion's name.
        name: String,
        /// The teacher's user name.
        username: String,
    },
}

/// `gradebook student ...`.
#[derive(Debug, Subcommand)]
pub enum StudentCommand {
    /// Add a student to a promotion.
    #[command(after_help = "\
Examples:
  gradebook student add RT2-2026 Alice Dupont
  gradebook student add RT2-2026 Bob Martin --number 22001234 --email bob@example.org")]
    Add {
        /// The promotion's name.
        promotion: String,
        /// First name.
        first_name: String,
        /// Last name.
        last_name: String,
        /// Institutional student number (unique).
        #[arg(long)]
        number: Option<String>,
        /// E-mail address.
        #[arg(long)]
        email: Option<String>,
    },
    /// List a promotion's students.
    #[command(after_help = "Example:\n  gradebook student list RT2-2026")]
    List {
        /// The promotion's name.
        promotion: String,
    },
    /// A student's grades by subject, subject averages, general average and rank.
    #[command(after_help = "Example:\n  gradebook student show 12")]
    Show {
        /// The student's id.
        id: i64,
    },
    /// A student's general average.
    #[command(after_help = "Example:\n  gradebook student average 12")]
    Average {
        /// The student's id.
        id: i64,
    },
    /// How a student's average is computed, grade by grade.
    #[command(after_help = "Example:\n  gradebook student explain 12")]
    Explain {
        /// The student's id.
        id: i64,
    },
    /// Change a student's identity or promotion.
    #[command(after_help = "\
Examples:
  gradebook student update 12 --email alice@example.org
  gradebook student update 12 --promotion RT2-2027
  gradebook student update 12 --clear-number")]
    Update {
        /// The student's id.
        id: i64,
        /// New first name.
        #[arg(long)]
        first_name: Option<String>,
        /// New last name.
        #[arg(long)]
        last_name: Option<String>,
        /// New institutional number.
        #[arg(long, conflicts_with = "clear_number")]
        number: Option<String>,
        /// Remove the institutional number.
        #[arg(long)]
        clear_number: bool,
        /// New e-mail address.
        #[arg(long, conflicts_with = "clear_email")]
        email: Option<String>,
        /// Remove the e-mail address.
        #[arg(long)]
        clear_email: bool,
        /// Move to this promotion.
        #[arg(long)]
        promotion: Option<String>,
    },
    /// Remove a student and their grades (asks first, unless --force).
    #[command(after_help = "\
Examples:
  gradebook student remove 12             names the student and asks (y/N)
  gradebook student remove 12 --force     without asking (scripts, shell scripts)")]
    Remove {
        /// The student's id.
        id: i64,
        /// Remove without asking for confirmation.
        #[arg(long)]
        force: bool,
    },
}

/// `gradebook grade ...`.
#[derive(Debug, Subcommand)]
pub enum GradeCommand {
    /// Add a grade: a number from 0 to 20 (12.5 or 12,5), or ABS, EXC, ATT.
    #[command(after_help = "\
Examples:
  gradebook grade add 12 Networks 14.5 --coef 2
  gradebook grade add 12 Networks ABS --label Midterm

ABS (unjustified absence) counts as 0; EXC (excused) and ATT (pending) are not counted.")]
    Add {
        /// The student's id.
        student: i64,
        /// The subject.
        subject: String,
        /// The grade: 0 to 20 with at most 2 decimals, or ABS, EXC, ATT.
        #[arg(allow_negative_numbers = true)]
        value: String,
        /// Its coefficient (default 1).
        #[arg(long, alias = "coefficient", allow_negative_numbers = true)]
        coef: Option<String>,
        /// A label, such as Midterm.
        #[arg(long)]
        label: Option<String>,
    },
    /// List a student's grades with their ids.
    #[command(after_help = "Example:\n  gradebook grade list 12")]
    List {
        /// The student's id.
        student: i64,
    },
    /// Change a grade.
    #[command(after_help = "\
Examples:
  gradebook grade update 31 --value 15.5
  gradebook grade update 31 --coef 3 --label Final")]
    Update {
        /// The grade's id.
        id: i64,
        /// New value: 0 to 20, or ABS, EXC, ATT.
        #[arg(long, allow_negative_numbers = true)]
        value: Option<String>,
        /// New coefficient.
        #[arg(long, alias = "coefficient", allow_negative_numbers = true)]
        coef: Option<String>,
        /// New subject.
        #[arg(long)]
        subject: Option<String>,
        /// New label.
        #[arg(long, conflicts_with = "clear_label")]
        label: Option<String>,
        /// Remove the label.
        #[arg(long)]
        clear_label: bool,
    },
    /// Delete a grade.
    #[command(after_help = "Example:\n  gradebook grade delete 31")]
    Delete {
        /// The grade's id.
        id: i64,
    },
    /// Make a promotion's grades visible to their students: all, or one subject's, one label's, or by id.
    #[command(after_help = "\
Examples:
  gradebook grade publish RT2-2026 --subject Networks --label Midterm
  gradebook grade publish RT2-2026 --ids 31,32,40
  gradebook grade publish RT2-2026                    every grade of the promotion")]
    Publish {
        #[command(flatten)]
        which: GradeSelectionArgs,
    },
    /// Hide a promotion's grades from their students again.
    #[command(after_help = "Example:\n  gradebook grade unpublish RT2-2026 --subject Networks")]
    Unpublish {
        #[command(flatten)]
        which: GradeSelectionArgs,
    },
}

/// Which grades `grade publish` and `grade unpublish` change.
#[derive(Debug, clap::Args)]
pub struct GradeSelectionArgs {
    /// The promotion's name.
    pub promotion: String,
    /// Only this subject's grades.
    #[arg(long)]
    pub subject: Option<String>,
    /// Only grades with this label.
    #[arg(long)]
    pub label: Option<String>,
    /// Only these grades (comma-separated ids).
    #[arg(long, value_delimiter = ',')]
    pub ids: Option<Vec<i64>>,
}

/// `gradebook audit ...`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Grade changes, newest first: who changed what, when.
    #[command(after_help = "\
Examples:
  gradebook audit list --promotion RT2-2026
  gradebook audit list --student 12 --limit 20")]
    List {
        /// Only this promotion's.
        #[arg(long)]
        promotion: Option<String>,
        /// Only this student's (id).
        #[arg(long)]
        student: Option<i64>,
        /// At most this many entries (default 100, at most 1000).
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Check the change log's hash chain, from its first entry to its last
    /// (admins): exits 1 if an entry was edited or deleted behind the
    /// server's back, naming the first one.
    #[command(after_help = "\
Example:
  gradebook audit verify

Note the head hash it prints somewhere safe: a later check whose chain still
passes through it proves nothing up to that entry was rewritten.")]
    Verify,
}

/// Options shared by both imports.
#[derive(Debug, Clone, Default, Args)]
pub struct ImportOptions {
    /// Check every line and report the bad ones; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Import the good lines and report the bad ones (by default one bad line
    /// means nothing is imported); the command then exits 1.
    #[arg(long)]
    pub skip_bad: bool,
    /// Skip this column of the file (its header, as written); repeat for
    /// several. Any other column the import does not know is an error.
    #[arg(long, value_name = "NAME")]
    pub ignore_column: Vec<String>,
    /// The sheet of an .xlsx or .ods workbook to read (the first by default).
    #[arg(long, value_name = "NAME")]
    pub sheet: Option<String>,
}

/// `gradebook import ...`.
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Add students to a promotion from a CSV, .xlsx or .ods file.
    ///
    /// Columns: first_name, last_name, and optionally number, email, in any order.
    /// A column the import does not know is an error (skip it with --ignore-column).
    #[command(after_help = "\
Examples:
  gradebook import students students.csv --promotion RT2-2026 --dry-run
  gradebook import students students.xlsx --promotion RT2-2026
  gradebook import students export.csv --promotion RT2-2026 --ignore-column 'Coefficient UE'

A CSV file may use , ; or tab as separator, be UTF-8 with or without BOM (or
Windows-1252), and quote fields; a workbook is read from its first sheet (--sheet NAME
for another). Headers are matched without regard to case or accents; French names work
too (prénom, nom, numéro, courriel). The server checks every line and adds the students
in one transaction: all or nothing, unless --skip-bad. A student already in the
promotion (same number, or same name) is reported as already present, so importing the
same file twice adds nothing. A student repeated on several lines (as in an export, one
line per grade) is added once. Over TCP (not --udp).")]
    Students {
        /// The file (- for standard input).
        file: PathBuf,
        /// The promotion to add them to.
        #[arg(long, short)]
        promotion: String,
        #[command(flatten)]
        options: ImportOptions,
    },
    /// Add grades to a promotion's students from a CSV, .xlsx or .ods file.
    ///
    /// Columns: subject, value, and optionally coefficient, label, in any order; each
    /// line's student by number, or by last_name and first_name, or by id (student).
    #[command(after_help = "\
Examples:
  gradebook import grades grades.csv --promotion RT2-2026 --dry-run
  gradebook import grades notes.ods --promotion RT2-2026 --sheet 'Semestre 1'

Values: 0 to 20 with at most 2 decimals (12.5 or 12,5), or ABS, EXC, ATT (any case).
An empty value is a grade not given yet: the line is skipped and counted. Each line's
student is found in the promotion by number, or else by last and first name (case,
accents and Unicode form do not matter; two students of the same name is an error
naming both), or else by id, so a file exported from another promotion or server
imports as is. A line identical to a grade already there (student, subject, label,
value, coefficient) is reported as already present: importing the same file twice adds
nothing. Checked and written by the server in one transaction. Over TCP (not --udp).")]
    Grades {
        /// The file (- for standard input).
        file: PathBuf,
        /// The promotion whose students the lines name.
        #[arg(long, short)]
        promotion: String,
        #[command(flatten)]
        options: ImportOptions,
    },
}

/// `gradebook export ...`.
#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// A promotion's students and grades as CSV.
    ///
    /// One line per grade (a student without grades gets one line): importing the
    /// file gives the same data back.
    #[command(after_help = "\
Examples:
  gradebook export promotion RT2-2026 -o rt2.csv
  gradebook export promotion RT2-2026 --separator ';' --decimal-comma > rt2.csv   for a French spreadsheet (with a BOM)
  gradebook export promotion RT2-2026 --format xlsx -o rt2.xlsx

Round trip into another promotion or server:
  gradebook import students rt2.csv --promotion RT2-COPY
  gradebook import grades rt2.csv --promotion RT2-COPY")]
    Promotion {
        /// The promotion's name.
        name: String,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// The field separator.
        #[arg(long, default_value = ",", value_parser = parse_separator)]
        separator: u8,
        /// Write decimals with a comma (12,5).
        #[arg(long)]
        decimal_comma: bool,
        /// csv, or xlsx (an Excel workbook, numbers as numbers; needs -o).
        #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
        format: ExportFormat,
    },
}

/// What `gradebook export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// Comma- (or --separator-) separated text; with ';', a BOM first.
    Csv,
    /// An Excel workbook (.xlsx).
    Xlsx,
}

fn parse_separator(s: &str) -> Result<u8, String> {
    match s {
        "," => Ok(b','),
        ";" => Ok(b';'),
        "\\t" | "\t" | "tab" => Ok(b'\t'),
        _ => Err("the separator is , or ; or tab".into()),
    }
}

/// `gradebook shell`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  gradebook shell
  gradebook shell < script.txt               run a script; stop at the first error
  gradebook shell --keep-going < script.txt  run every line, report the errors

In the shell: the commands without the `gradebook` prefix (promotion list, student show 12),
help, help COMMAND, exit. Lines starting with # are comments. Connection flags (--server,
--plaintext, --encoding ...) are given when starting the shell; it runs over TCP (not --udp).")]
pub struct ShellArgs {
    /// With a script on standard input, go on after a failed line (the exit
    /// status still tells that one failed).
    #[arg(long)]
    pub keep_going: bool,
}

/// `gradebook completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `gradebook backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The new file to write (never overwritten).
    pub file: PathBuf,
    /// The server's data directory (its database is DATA/gradebook.db).
    #[arg(long, env = "GRADEBOOK_DATA", default_value = "gradebook-data")]
    pub data: PathBuf,
}

/// `gradebook migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The stopped server's data directory (its database is DATA/gradebook.db).
    #[arg(long, env = "GRADEBOOK_DATA", default_value = "gradebook-data")]
    pub data: PathBuf,
    /// The empty PostgreSQL database to copy into: postgres://USER@HOST[:PORT]/DB.
    #[arg(long, value_name = "URL")]
    pub to: String,
}

/// `gradebook fingerprint`.
#[derive(Debug, Args)]
pub struct FingerprintArgs {
    /// A PEM certificate (the server's is DATA/server-cert.pem).
    pub cert: PathBuf,
}
