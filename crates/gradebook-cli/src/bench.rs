//! `gradebook bench`: a load generator in the spirit of `redis-benchmark`.
//!
//! It logs in as the admin only to create its own teacher account, then
//! builds its own data set under that login (promotions × students ×
//! grades), opens `-c` connections that each keep `-P` requests in flight,
//! and reports requests/s, latency percentiles and errors. The data set is
//! deleted at the end unless `--keep`.
//!
//! Two modes measure a reference instead: `--fsync-baseline` (single-row
//! commits on this disk) and `--import-grades` (the CLI's import of a CSV
//! file beside a raw SQLite insert of the same rows, in [`import`]).

mod after_write;
mod baseline;
mod import;
mod watchers;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use gradebook_client::{Client, ClientError, ConnectOptions, Queued, Trust, UdpClient, UdpOptions};
use gradebook_proto::command::{
    GradeAddArgs, GradeInput, IdArgs, NoArgs, PromotionArgs, PromotionCreateArgs,
    PromotionDeleteArgs, StudentAddArgs, UserCreateArgs, UsernameArgs,
};
use gradebook_proto::{Call, Command, Encoding, Secret, call};
use hdrhistogram::Histogram;
use serde_json::json;

use crate::app::Ctx;
use crate::args::Global;
use crate::connect::Conn;

/// What the benchmark sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// Reads: student.average, student.show and promotion.average in turn.
    Read,
    /// Only student.average (the read the performance targets quote).
    Average,
    /// Only student.show (what a student's home page in the web portal
    /// reads, beside its promotion's average).
    Show,
    /// Writes: grade.add, each acknowledged after its commit.
    Write,
    /// 90% reads (as `read`), 10% writes.
    Mixed,
    /// Only ping: the protocol's floor, no storage.
    Ping,
}

/// The encoding of the benchmark's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchEncoding {
    /// JSON Lines.
    Json,
    /// Length-prefixed MessagePack (after `hello`).
    Msgpack,
}

/// Settings of `gradebook bench`. The connection flags (`--server`,
/// `--plaintext`, `--ca-cert`, `--accept-fingerprint`, `--json`, `--udp`,
/// `--quic`, `--quic-port`, `--encoding`) are the global ones. With `--udp` (plaintext servers only)
/// each of the -c clients keeps -P datagram requests in flight; start the
/// server with a higher `--udp-rate`, or its per-address limit is what you
/// measure; without `--ca-cert` or `--accept-fingerprint` the benchmark
/// accepts the server's certificate and prints its fingerprint.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  GRADEBOOK_PASSWORD=... gradebook bench --plaintext --server 127.0.0.1:7302 -c 50 -n 200000 --workload average
  gradebook bench -c 50 -P 16 --duration 10 --workload read --json
  gradebook bench -c 50 --workload write --encoding msgpack
  gradebook bench --plaintext -c 10 -P 8 --udp --workload average   (server: --udp-rate 1000000 --udp-burst 1000000)
  gradebook bench -c 50 --quic --workload average       the same load over QUIC (one stream per request)
  gradebook bench --fsync-baseline 2000                 single-row commits on this disk, for comparison
  gradebook bench --import-grades 100000 --students 1000   a CSV import by the CLI against a raw SQLite insert")]
pub struct BenchArgs {
    /// Admin account used to create the benchmark's own account.
    #[arg(long, default_value = "admin")]
    user: String,
    /// The admin's password.
    #[arg(
        long,
        env = "GRADEBOOK_PASSWORD",
        hide_env_values = true,
        required_unless_present_any = ["fsync_baseline", "import_grades"]
    )]
    password: Option<String>,
    /// Connections sending requests.
    #[arg(short = 'c', long, default_value_t = 50)]
    connections: usize,
    /// Requests in all (ignored with --duration).
    #[arg(short = 'n', long, default_value_t = 100_000)]
    requests: u64,
    /// Run for this many seconds instead of -n requests.
    #[arg(long)]
    duration: Option<f64>,
    /// Requests sent together per connection, their replies read before the next batch (pipelining, as redis-benchmark -P).
    #[arg(short = 'P', long, default_value_t = 1)]
    pipeline: usize,
    /// What to send.
    #[arg(long, value_enum, default_value = "read")]
    workload: Workload,
    /// Wire encoding.
    #[arg(long, value_enum, default_value = "json")]
    encoding: BenchEncoding,
    /// Extra connections opened and left idle during the run.
    #[arg(long, default_value_t = 0)]
    idle: usize,
    /// Promotions in the data set.
    #[arg(long, default_value_t = 10)]
    promotions: usize,
    /// Students per promotion [default: 30; with --import-grades, the
    /// students of its scratch promotion: 1000].
    #[arg(long)]
    students: Option<usize>,
    /// Grades per student.
    #[arg(long, default_value_t = 20)]
    grades: usize,
    /// Keep the data set and the account (with --import-grades, the scratch
    /// promotion) afterwards.
    #[arg(long)]
    keep: bool,
    /// Instead of the server: time this many single-row commits with
    /// synchronous=FULL in a scratch SQLite file of the current directory
    /// (or, with --database, in a scratch table of that PostgreSQL database).
    #[arg(long, value_name = "N")]
    fsync_baseline: Option<u32>,
    /// With --fsync-baseline: the PostgreSQL database to time commits in
    /// (postgres://USER@HOST/DB), instead of a scratch SQLite file.
    #[arg(long, value_name = "URL", requires = "fsync_baseline")]
    database: Option<String>,
    /// Instead of the load: time the CLI's import of N grades from a CSV file
    /// (`gradebook import grades`, under the saved session of `gradebook
    /// login`) into a scratch promotion, then a raw insert of the same rows
    /// into a scratch SQLite file (one transaction, one prepared statement),
    /// and print both and their ratio. Scratch files go to the current
    /// directory: run it from one on the server's disk.
    #[arg(long, value_name = "N", conflicts_with = "fsync_baseline")]
    import_grades: Option<u32>,
    /// Instead of the load: on one connection, N rounds of a grade.add
    /// followed by a timed student.show, another grade.add followed by a
    /// timed promotion.average, and a timed ping, in the first promotion of
    /// the data set; prints each read's latency and its ratio to the ping's
    /// (use --promotions 1 --students 5000 --grades 20 for the issue's
    /// figure).
    #[arg(long, value_name = "N", conflicts_with_all = ["fsync_baseline", "import_grades"])]
    after_write: Option<u32>,
    /// Connections watching the data set's first promotion during the load
    /// (use --promotions 1 and --workload write): each counts its events;
    /// afterwards, the latency of 200 events from a write's acknowledgement
    /// to a watcher's receipt.
    #[arg(long, value_name = "N", default_value_t = 0, conflicts_with_all = ["fsync_baseline", "import_grades", "after_write"])]
    watchers: usize,
}

impl BenchArgs {
    /// Students per promotion of the load's data set.
    fn students(&self) -> usize {
        self.students.unwrap_or(30)
    }
}

/// Where and how to connect, from the global flags.
#[derive(Debug, Clone)]
pub struct Target {
    /// `HOST:PORT`.
    pub server: String,
    /// No TLS.
    pub plaintext: bool,
    /// A CA to verify the server with.
    pub ca_cert: Option<PathBuf>,
    /// A pinned certificate fingerprint.
    pub fingerprint: Option<String>,
    /// JSON output.
    pub json: bool,
    /// Requests as UDP datagrams.
    pub udp: bool,
    /// The QUIC address, to speak QUIC instead of TCP (`--quic`).
    pub quic: Option<String>,
}

/// The data set the workers draw from.
#[derive(Debug)]
struct DataSet {
    promotions: Vec<String>,
    students: Vec<i64>,
}

/// What one worker measured.
struct Tally {
    latencies: Histogram<u64>,
    errors: u64,
    done: u64,
}

/// Runs the benchmark with the global connection flags.
pub fn run(global: Global, args: BenchArgs) -> ExitCode {
    let quic = if global.quic {
        match crate::connect::quic_address(
            &crate::connect::server_address(&global.server),
            global.quic_port,
        ) {
            Ok(a) => Some(a),
            Err(e) => {
                crate::app::report(&e);
                return ExitCode::from(e.exit_code());
            }
        }
    } else {
        None
    };
    let target = Target {
        quic,
        server: global.server.clone(),
        plaintext: global.plaintext,
        ca_cert: global.ca_cert.clone(),
        fingerprint: global.accept_fingerprint.clone(),
        json: global.json,
        udp: global.udp,
    };
    // One thread, like redis-benchmark: on a small machine the load
    // generator should leave the cores to the server it measures.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gradebook bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(n) = args.fsync_baseline {
        return match &args.database {
            None => fsync_baseline(n, target.json),
            Some(url) => {
                let took = runtime.block_on(baseline::postgres_single_row_commits(url, n.max(1)));
                report_baseline(
                    "commit-baseline",
                    "PostgreSQL single-row commits",
                    n,
                    took,
                    target.json,
                )
            }
        };
    }
    if let Some(grades) = args.import_grades {
        if global.udp || global.quic {
            // Refused before anything is created, as `gradebook import` is.
            let e = crate::error::CliError::usage(
                "--import-grades times an import, which runs over TCP: run it without --udp \
                 or --quic",
            );
            crate::app::report(&e);
            return ExitCode::from(e.exit_code());
        }
        let settings = import::Settings {
            grades,
            students: args.students.unwrap_or(1000),
            keep: args.keep,
            json: global.json,
        };
        let mut ctx = Ctx {
            conn: Conn::new(global, true),
            json: settings.json,
            in_shell: false,
        };
        return match runtime.block_on(import::run(&mut ctx, &settings)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                crate::app::report(&e);
                ExitCode::from(e.exit_code())
            }
        };
    }
    match runtime.block_on(bench(target, args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gradebook bench: {e}");
            ExitCode::from(match e {
                ClientError::Server(_) => 1,
                _ => 3,
            })
        }
    }
}

/// Times single-row durable commits: the rate group commit is measured
/// against.
fn fsync_baseline(n: u32, json: bool) -> ExitCode {
    let path = PathBuf::from(format!("gradebook-fsync-baseline-{}.db", random_tag()));
    let took = baseline::single_row_commits(&path, n.max(1)).map_err(|e| e.to_string());
    report_baseline(
        "fsync-baseline",
        "fsync baseline: single-row commits (synchronous=FULL)",
        n,
        took,
        json,
    )
}

/// Prints a baseline's rate (`--json`: one line for scripts).
fn report_baseline(
    workload: &str,
    what: &str,
    n: u32,
    took: Result<Duration, String>,
    json: bool,
) -> ExitCode {
    match took {
        Ok(took) => {
            let n = n.max(1);
            let rate = f64::from(n) / took.as_secs_f64().max(1e-9);
            if json {
                println!(
                    "{}",
                    json!({"workload": workload, "requests": n, "seconds": took.as_secs_f64(), "rps": rate})
                );
            } else {
                println!(
                    "{what}: {n} in {:.2} s: {rate:.0} commits/s",
                    took.as_secs_f64()
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gradebook bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn options(target: &Target) -> ConnectOptions {
    if target.plaintext {
        ConnectOptions::plaintext(target.server.clone())
    } else {
        let trust = match (&target.ca_cert, &target.fingerprint) {
            (Some(ca), _) => Trust::CaFile(ca.clone()),
            (None, Some(fp)) => Trust::Fingerprint(fp.clone()),
            (None, None) => Trust::Tofu,
        };
        match &target.quic {
            Some(quic) => ConnectOptions::quic(quic.clone(), trust),
            None => ConnectOptions::tls(target.server.clone(), trust),
        }
    }
}

async fn bench(target: Target, args: BenchArgs) -> Result<(), ClientError> {
    let options = options(&target);
    let mut admin = Client::connect(&options).await?;
    if let Some(fp) = admin.server_fingerprint()
        && target.ca_cert.is_none()
        && target.fingerprint.is_none()
    {
        eprintln!("server certificate {fp} (not verified: use --ca-cert to verify)");
    }
    let admin_password = args.password.clone().unwrap_or_default();
    admin.login(&args.user, &admin_password).await?;

    // The benchmark's own account and data set.
    let tag = random_tag();
    let username = format!("bench-{tag}");
    let password = format!("bench-password-{tag}-{tag}");
    admin
        .run(call::UserCreate(UserCreateArgs {
            username: username.clone(),
            password: Secret::new(&password),
            role: "teacher".into(),
            student: None,
        }))
        .await?;
    let mut owner = Client::connect(&options).await?;
    owner.login(&username, &password).await?;
    let started = Instant::now();
    let data = build(&mut owner, &args, &tag).await?;
    if !target.json {
        eprintln!(
            "data set: {} promotions × {} students × {} grades in {:.1} s",
            args.promotions,
            args.students(),
            args.grades,
            started.elapsed().as_secs_f64()
        );
    }
    let data = Arc::new(data);
    if let Some(rounds) = args.after_write {
        after_write::run(&mut owner, &data, args.students(), rounds, target.json).await?;
    } else {
        load(&target, &args, &options, &username, &password, data.clone()).await?;
    }

    if !args.keep {
        for p in &data.promotions {
            owner
                .run(call::PromotionDelete(PromotionDeleteArgs {
                    name: p.clone(),
                    force: Some(true),
                }))
                .await?;
        }
        admin
            .run(call::UserDelete(UsernameArgs { username }))
            .await?;
    }
    Ok(())
}

/// The load itself: `-c` connections sending the workload.
async fn load(
    target: &Target,
    args: &BenchArgs,
    options: &ConnectOptions,
    username: &str,
    password: &str,
    data: Arc<DataSet>,
) -> Result<(), ClientError> {
    let mut idle = Vec::with_capacity(args.idle);
    for _ in 0..args.idle {
        idle.push(Client::connect(options).await?);
    }
    let watched = data.promotions.first().cloned().unwrap_or_default();
    let watchers = if args.watchers > 0 {
        if args.promotions != 1 || !matches!(args.workload, Workload::Write) {
            return Err(ClientError::Protocol(
                "--watchers counts the events of writes to one promotion: add --promotions 1 \
                 --workload write"
                    .into(),
            ));
        }
        Some(watchers::start(options, username, password, &watched, args.watchers).await?)
    } else {
        None
    };

    // Log every worker in before the clock starts.
    let wire = match args.encoding {
        BenchEncoding::Json => Encoding::Json,
        BenchEncoding::Msgpack => Encoding::Msgpack,
    };
    let mut clients = Vec::with_capacity(args.connections);
    let mut datagram_clients = Vec::new();
    for _ in 0..args.connections {
        let mut c = Client::connect(options).await?;
        let login = c.login(username, password).await?;
        if target.udp {
            let mut o = UdpOptions::new(target.server.clone());
            o.encoding = wire;
            let udp = UdpClient::connect(&o).await?;
            udp.set_token(Some(login.token));
            datagram_clients.push(Arc::new(udp));
            continue;
        }
        if wire == Encoding::Msgpack {
            c.use_encoding(Encoding::Msgpack).await?;
        }
        clients.push(c);
    }
    let plan = Arc::new(Plan {
        workload: args.workload,
        data: data.clone(),
        budget: AtomicI64::new(i64::try_from(args.requests).unwrap_or(i64::MAX)),
        deadline: args
            .duration
            .map(|s| Instant::now() + Duration::from_secs_f64(s.max(0.1))),
        counter: AtomicU64::new(0),
    });
    let pipeline = args.pipeline.max(1);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients.len());
    for (i, client) in clients.into_iter().enumerate() {
        tasks.push(tokio::spawn(worker(
            client,
            i as u64,
            pipeline,
            plan.clone(),
        )));
    }
    for (i, udp) in datagram_clients.into_iter().enumerate() {
        for p in 0..pipeline {
            let seed = (i * pipeline + p) as u64;
            tasks.push(tokio::spawn(datagram_worker(
                udp.clone(),
                seed,
                plan.clone(),
            )));
        }
    }
    let mut latencies = histogram()?;
    let (mut errors, mut done) = (0, 0);
    for t in tasks {
        let tally = t
            .await
            .map_err(|e| ClientError::Protocol(e.to_string()))??;
        let _ = latencies.add(&tally.latencies);
        errors += tally.errors;
        done += tally.done;
    }
    let seconds = started.elapsed().as_secs_f64();
    drop(idle);

    report(target, args, done, errors, seconds, &latencies);
    if let Some(w) = watchers {
        let expected = (done - errors) * args.watchers as u64;
        let received = w.settle(expected).await;
        let student = data.students.first().copied().unwrap_or_default();
        let h =
            watchers::event_latency(options, username, password, &watched, student, 200).await?;
        w.stop();
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        if target.json {
            println!(
                "{}",
                json!({
                    "watchers": args.watchers,
                    "events_expected": expected,
                    "events_received": received,
                    "event_p50_ms": ms(0.5),
                    "event_p99_ms": ms(0.99),
                })
            );
        } else {
            println!(
                "  {} watchers: {received} of {expected} events received; event latency ms \
                 (acknowledgement to receipt, 200 more writes): p50 {:.3}  p99 {:.3}",
                args.watchers,
                ms(0.5),
                ms(0.99)
            );
        }
    }
    Ok(())
}

/// Creates the data set, pipelined.
async fn build(c: &mut Client, args: &BenchArgs, tag: &str) -> Result<DataSet, ClientError> {
    let promotions: Vec<String> = (0..args.promotions)
        .map(|i| format!("bench-{tag}-{i}"))
        .collect();
    let mut created = Vec::with_capacity(promotions.len());
    for p in &promotions {
        created.push(c.queue(call::PromotionCreate(PromotionCreateArgs {
            name: p.clone(),
            year: Some(2026),
            description: None,
            publication: None,
        }))?);
    }
    expect_ok(c, created).await?;
    let mut added = Vec::with_capacity(promotions.len() * args.students());
    for p in &promotions {
        for s in 0..args.students() {
            added.push(c.queue(call::StudentAdd(StudentAddArgs {
                promotion: p.clone(),
                first_name: format!("F{s}"),
                last_name: format!("L{s}"),
                number: None,
                email: None,
            }))?);
        }
    }
    let students: Vec<i64> = expect_ok(c, added)
        .await?
        .into_iter()
        .map(|s| s.id)
        .collect();
    let subjects = ["Networks", "Maths", "Programming", "English", "Physics"];
    let mut batch = Vec::with_capacity(512);
    for (k, s) in students.iter().enumerate() {
        for g in 0..args.grades {
            let value = ((k * 7 + g * 13) % 2001) as f64 / 100.0;
            batch.push(c.queue(call::GradeAdd(GradeAddArgs {
                student: *s,
                subject: subjects[g % subjects.len()].into(),
                value: GradeInput::Number(value),
                coefficient: Some((1 + g % 3) as f64),
                label: None,
            }))?);
            // Bounded batches: the server answers while we send.
            if batch.len() == 512 {
                expect_ok(c, std::mem::take(&mut batch)).await?;
            }
        }
    }
    expect_ok(c, batch).await?;
    Ok(DataSet {
        promotions,
        students,
    })
}

/// Reads the replies to `queued`, in order; the first refusal stops.
async fn expect_ok<C: Call>(
    c: &mut Client,
    queued: Vec<Queued<C>>,
) -> Result<Vec<C::Reply>, ClientError> {
    let mut replies = Vec::with_capacity(queued.len());
    for q in queued {
        replies.push(c.reply_to(q).await?);
    }
    Ok(replies)
}

/// What every worker draws its requests from, and when they all stop.
struct Plan {
    workload: Workload,
    data: Arc<DataSet>,
    /// Requests left to send (with `-n`).
    budget: AtomicI64,
    /// When to stop (with `--duration`).
    deadline: Option<Instant>,
    /// Numbers the written grades.
    counter: AtomicU64,
}

impl Plan {
    /// Whether another request may be sent (and counts it).
    fn more(&self) -> bool {
        match self.deadline {
            Some(d) => Instant::now() < d,
            None => self.budget.fetch_sub(1, Ordering::Relaxed) > 0,
        }
    }

    fn next(&self, rng: &mut u64) -> Command {
        next_request(self.workload, &self.data, rng, &self.counter)
    }
}

fn histogram() -> Result<Histogram<u64>, ClientError> {
    Histogram::new_with_bounds(1, 60_000_000, 3).map_err(|e| ClientError::Protocol(e.to_string()))
}

impl Tally {
    fn new() -> Result<Self, ClientError> {
        Ok(Tally {
            latencies: histogram()?,
            errors: 0,
            done: 0,
        })
    }

    /// Counts one answered request, sent at `sent_at`.
    fn record(&mut self, sent_at: Instant, ok: bool) {
        let micros = sent_at.elapsed().as_micros().max(1);
        let _ = self
            .latencies
            .record(u64::try_from(micros).unwrap_or(u64::MAX));
        self.done += 1;
        if !ok {
            self.errors += 1;
        }
    }
}

/// One TCP connection sending its requests `pipeline` at a time: it writes
/// a batch, then reads the batch's replies, like `redis-benchmark -P`.
async fn worker(
    mut client: Client,
    seed: u64,
    pipeline: usize,
    plan: Arc<Plan>,
) -> Result<Tally, ClientError> {
    let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut tally = Tally::new()?;
    loop {
        let mut batch = 0;
        while batch < pipeline && plan.more() {
            // Sent untyped, and only each reply's outcome is read, not its
            // data: the benchmark spends its CPU on sending, not parsing.
            let command = plan.next(&mut rng);
            client.send(command.name(), command.args())?;
            batch += 1;
        }
        if batch == 0 {
            break;
        }
        let sent_at = Instant::now();
        for _ in 0..batch {
            let status = client.recv_status().await?;
            tally.record(sent_at, status.error.is_none());
        }
    }
    Ok(tally)
}

/// One request at a time over UDP; several of these share a client to keep
/// requests in flight. A request lost for good (after the client's retries)
/// counts as an error, and the run goes on.
async fn datagram_worker(
    udp: Arc<UdpClient>,
    seed: u64,
    plan: Arc<Plan>,
) -> Result<Tally, ClientError> {
    let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut tally = Tally::new()?;
    while plan.more() {
        let command = plan.next(&mut rng);
        let sent_at = Instant::now();
        let result = udp.call(command.name(), command.args()).await;
        tally.record(sent_at, result.is_ok());
    }
    Ok(tally)
}

/// xorshift64: cheap, good enough to spread requests over the data set.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn next_request(workload: Workload, data: &DataSet, rng: &mut u64, counter: &AtomicU64) -> Command {
    let r = next_random(rng);
    let student = data.students[(r % data.students.len().max(1) as u64) as usize];
    let read = |r: u64| match r % 3 {
        0 => Command::StudentAverage(IdArgs { id: student }),
        1 => Command::StudentShow(IdArgs { id: student }),
        _ => Command::PromotionAverage(PromotionArgs {
            name: data.promotions[(r / 3) as usize % data.promotions.len()].clone(),
        }),
    };
    let write = || {
        let n = counter.fetch_add(1, Ordering::Relaxed);
        Command::GradeAdd(GradeAddArgs {
            student,
            subject: "Bench".into(),
            value: GradeInput::Number((n % 2001) as f64 / 100.0),
            coefficient: None,
            label: None,
        })
    };
    match workload {
        Workload::Ping => Command::Ping(NoArgs {}),
        Workload::Average => Command::StudentAverage(IdArgs { id: student }),
        Workload::Show => Command::StudentShow(IdArgs { id: student }),
        Workload::Read => read(r >> 8),
        Workload::Write => write(),
        Workload::Mixed if r.is_multiple_of(10) => write(),
        Workload::Mixed => read(r >> 8),
    }
}

fn report(
    target: &Target,
    args: &BenchArgs,
    done: u64,
    errors: u64,
    seconds: f64,
    h: &Histogram<u64>,
) {
    let rps = done as f64 / seconds.max(1e-9);
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    if target.json {
        let out = json!({
            "workload": format!("{:?}", args.workload).to_lowercase(),
            "connections": args.connections,
            "pipeline": args.pipeline,
            "encoding": format!("{:?}", args.encoding).to_lowercase(),
            "tls": !target.plaintext,
            "udp": target.udp,
            "quic": target.quic.is_some(),
            "idle": args.idle,
            "requests": done,
            "errors": errors,
            "seconds": seconds,
            "rps": rps,
            "p50_ms": ms(0.5),
            "p99_ms": ms(0.99),
            "p999_ms": ms(0.999),
            "max_ms": h.max() as f64 / 1000.0,
        });
        println!("{out}");
    } else {
        println!(
            "{:?}: {} connections, pipeline {}, {:?}, {}",
            args.workload,
            args.connections,
            args.pipeline,
            args.encoding,
            match (target.udp, target.plaintext, &target.quic) {
                (true, _, _) => "UDP",
                (false, true, _) => "plaintext",
                (false, false, Some(_)) => "QUIC",
                (false, false, None) => "TLS",
            }
        );
        println!("  {done} requests in {seconds:.2} s: {rps:.0} requests/s, {errors} errors");
        println!(
            "  latency ms: p50 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
            ms(0.5),
            ms(0.99),
            ms(0.999),
            h.max() as f64 / 1000.0
        );
    }
}

/// Six hex digits, so concurrent or repeated runs never share names.
fn random_tag() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mixed = (nanos as u64 ^ u64::from(std::process::id())).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!("{:06x}", mixed >> 40)
}
