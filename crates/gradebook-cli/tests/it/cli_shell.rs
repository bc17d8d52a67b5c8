//! `gradebook shell` through standard input: a script on one connection,
//! stopped at its first failing line unless `--keep-going`.

use crate::cli_support;

use cli_support::{ADMIN_PASSWORD, Server, User};

#[test]
fn a_script_runs_the_same_commands_without_the_prefix() {
    let server = Server::plaintext();
    let u = User::admin(&server);
    let script = "\
# set up a promotion
promotion create RT1 --year 2027

student add RT1 Ann Lee --number 7
gradebook student add RT1 \"Jean Pierre\" 'De La Tour'
grade add 1 Networks 12,5 --coef 2
grade add 2 Networks 15
help grade add
promotion show RT1 --json
promotion average RT1
exit
promotion delete RT1 --force
";
    let out = u.run_stdin(&["shell"], script);
    let text = out.ok();
    assert!(text.contains("Created promotion RT1 (2027)."), "{text}");
    assert!(
        text.contains("Added Jean Pierre De La Tour to RT1 with id 2."),
        "{text}"
    );
    assert!(
        text.contains("Usage: grade add [OPTIONS] <STUDENT> <SUBJECT> <VALUE>"),
        "{text}"
    );
    assert!(text.contains("\"first_name\": \"Jean Pierre\""), "{text}");
    assert!(text.contains("[15, 16) │█"), "{text}");
    // `exit` ended the script: the promotion is still there.
    assert!(u.run(&["promotion", "list"]).ok().contains("RT1"));
    assert!(out.stderr.is_empty(), "{}", out.stderr);

    let help = u.run_stdin(&["shell"], "help\n").ok().to_owned();
    assert!(help.contains("promotion average"), "{help}");
    assert!(help.contains("import grades"), "{help}");
    assert!(!help.contains("  serve"), "{help}");
}

#[test]
fn a_script_stops_at_its_first_failing_line() {
    let server = Server::plaintext();
    let u = User::admin(&server);
    let script = "promotion create A\nstudent show 999\npromotion create B\n";
    let out = u.run_stdin(&["shell"], script);
    let err = out.fails(1);
    assert!(err.contains("line 2: not_found"), "{err}");
    let list = u.run(&["promotion", "list"]).ok().to_owned();
    assert!(list.contains(" A ") && !list.contains(" B "), "{list}");

    // A usage error stops it too, with exit code 2.
    let out = u.run_stdin(
        &["shell"],
        "promotion list\npromotion fly\npromotion create C\n",
    );
    assert!(
        out.fails(2)
            .contains("line 2: unrecognized subcommand 'fly'"),
        "{}",
        out.stderr
    );
    assert!(!u.run(&["promotion", "list"]).ok().contains(" C "));
}

#[test]
fn keep_going_runs_every_line_and_still_reports_the_failure() {
    let server = Server::plaintext();
    let u = User::admin(&server);
    let script = "promotion create A\nstudent show 999\npromotion create A\npromotion create B\n";
    let out = u.run_stdin(&["shell", "--keep-going"], script);
    let err = out.fails(1);
    assert!(
        err.contains("line 2: not_found") && err.contains("line 3: conflict"),
        "{err}"
    );
    assert!(u.run(&["promotion", "list"]).ok().contains(" B "));
}

#[test]
fn login_inside_the_shell_reads_the_password_from_the_next_line() {
    let server = Server::plaintext();
    let u = User::new(&server);
    let script = "whoami\n";
    assert!(
        u.run_stdin(&["shell"], script)
            .fails(1)
            .contains("not logged in")
    );
    let script = format!("login admin\n{ADMIN_PASSWORD}\nwhoami\nlogout\nwhoami\n");
    let out = u.run_stdin(&["shell", "--keep-going"], &script);
    assert!(out.stdout.contains("Logged in to"), "{}", out.stdout);
    assert!(out.stdout.contains("admin (admin) on"), "{}", out.stdout);
    assert!(out.stdout.contains("Logged out of"), "{}", out.stdout);
    assert!(
        out.fails(1).contains("line 5: not logged in"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_shell_keeps_its_connection_settings() {
    let server = Server::plaintext();
    let u = User::admin(&server);
    let out = u.run_stdin(&["shell"], "ping --server 127.0.0.1:1\n");
    assert!(
        out.fails(2).contains("keeps its connection"),
        "{}",
        out.stderr
    );
    let out = u.run_stdin(&["shell"], "serve\n");
    assert!(out.fails(2).contains("not in the shell"), "{}", out.stderr);
    let out = u.run_stdin(&["shell"], "import grades - -p P --dry-run\n");
    assert!(out.fails(2).contains("give a file name"), "{}", out.stderr);
}
