//! CSV import and export as spreadsheets write them: separators, decimal
//! commas, BOM, quotes, headers in any order; bad lines reported, nothing
//! imported unless `--skip-bad`; export then import gives the same data.

use crate::cli_support;

use cli_support::{Server, User};
use serde_json::Value;

fn students(u: &User, promotion: &str) -> Vec<Value> {
    u.run(&["student", "list", promotion, "--json"]).json()["students"]
        .as_array()
        .cloned()
        .expect("students")
}

fn grades(u: &User, student: i64) -> Vec<Value> {
    u.run(&["grade", "list", &student.to_string(), "--json"])
        .json()["grades"]
        .as_array()
        .cloned()
        .expect("grades")
}

fn id_of(list: &[Value], last_name: &str) -> i64 {
    list.iter()
        .find(|s| s["last_name"] == last_name)
        .and_then(|s| s["id"].as_i64())
        .unwrap_or_else(|| panic!("no {last_name} in {list:?}"))
}

#[test]
fn a_french_spreadsheet_file_imports_semicolons_decimal_commas_and_bom() {
    let server = Server::plaintext();
    let u = User::admin(&server);
    u.run(&["promotion", "create", "RT2"]).ok();

    // BOM, `;`, CRLF, French headers in another order, a quoted field
    // holding the separator, a blank line, an empty optional field.
    let students_csv = "\u{feff}Numéro;Nom;Prénom;E-mail\r\n\
        22001;Dupont;\"Jean; Pierre\";jp@example.org\r\n\
        \r\n\
        22002;Martin;Zoé;\r\n\
        22003;\"L'Hôte\";Ana;ana@example.org\r\n";
    let file = u.file("etudiants.csv", students_csv.as_bytes());
    let out = u.run(&["import", "students", &file, "--promotion", "RT2"]);
    assert_eq!(out.ok().trim(), "Imported 3 students into RT2.");
    let list = students(&u, "RT2");
    assert_eq!(list.len(), 3);
    let dupont = list
        .iter()
        .find(|s| s["last_name"] == "Dupont")
        .expect("Dupont");
    assert_eq!(dupont["first_name"], "Jean; Pierre");
    assert_eq!(dupont["number"], "22001");
    assert_eq!(dupont["email"], "jp@example.org");
    let martin = list
        .iter()
        .find(|s| s["last_name"] == "Martin")
        .expect("Martin");
    assert_eq!(martin["email"], Value::Null);
    assert_eq!(martin["first_name"], "Zoé");

    let grades_csv = "\u{feff}Coef;Note;Matière;Numéro;Libellé\r\n\
        2;12,5;Réseaux;22001;Partiel\r\n\
        1;abs;Réseaux;22002;\r\n\
        1,5;14,25;Maths;22001;\"Contrôle; 2\"\r\n\
        ;EXC;Maths;22003;\r\n";
    let file = u.file("notes.csv", grades_csv.as_bytes());
    let out = u.run(&["import", "grades", &file, "--promotion", "RT2"]);
    assert_eq!(out.ok().trim(), "Imported 4 grades into RT2.");
    let g = grades(&u, id_of(&list, "Dupont"));
    assert_eq!(g.len(), 2);
    assert_eq!(
        (g[0]["subject"].as_str(), g[0]["value"].as_f64()),
        (Some("Réseaux"), Some(12.5))
    );
    assert_eq!(g[0]["coefficient"], 2.0);
    assert_eq!(g[0]["label"], "Partiel");
    assert_eq!(
        (g[1]["value"].as_f64(), g[1]["coefficient"].as_f64()),
        (Some(14.25), Some(1.5))
    );
    assert_eq!(g[1]["label"], "Contrôle; 2");
    assert_eq!(grades(&u, id_of(&list, "Martin"))[0]["value"], "ABS");
    let exc = grades(&u, id_of(&list, "L'Hôte"));
    assert_eq!(
        (&exc[0]["value"], &exc[0]["coefficient"]),
        (&Value::from("EXC"), &Value::from(1.0))
    );

    // Commas, quoted decimal commas, students by name, no BOM.
    let file = u.file(
        "more.csv",
        b"first_name,last_name,subject,value\nZo\xc3\xa9,Martin,Maths,\"9,75\"\n",
    );
    u.run(&["import", "grades", &file, "-p", "RT2"]).ok();
    assert_eq!(grades(&u, id_of(&list, "Martin"))[1]["value"], 9.75);
}

#[test]
fn bad_lines_are_reported_and_nothing_is_imported_unless_skip_bad() {
    let server = Server::plaintext();
    let u = User::admin(&server);
    u.run(&["promotion", "create", "P"]).ok();
    let file = u.file(
        "students.csv",
        b"last_name,first_name,number\nLee,Ann,1\nKim,Bo,2\n",
    );
    u.run(&["import", "students", &file, "-p", "P"]).ok();
    let list = students(&u, "P");

    let csv = "number;subject;value;coef\n\
        1;Maths;12;1\n\
        1;Maths;25;1\n\
        2;Physics;13,5;2\n\
        3;Maths;10;1\n\
        2;;14;1\n\
        2;Maths;12,345;1\n\
        1;Maths;11;0\n\
        2;Maths;twelve;1\n\
        2;Physics;ABS;\n";
    let file = u.file("grades.csv", csv.as_bytes());

    let out = u.run(&["import", "grades", &file, "-p", "P", "--dry-run"]);
    let err = out.fails(1).to_owned();
    let expected = [
        "line 3: grade 25 is outside 0..20",
        "line 5: no student with number 3 in P",
        "line 6: subject must not be empty",
        "line 7: grade 12.345 has more than 2 decimals",
        "line 8: coefficient 0 must be greater than 0 and at most 100",
        "line 9: grade value 'twelve' is neither a number nor ABS, EXC or ATT",
    ];
    for e in expected {
        assert!(err.contains(e), "missing {e:?} in:\n{err}");
    }
    assert_eq!(err.matches("line ").count(), 6, "{err}");
    assert!(err.contains("nothing was changed"), "{err}");
    assert!(grades(&u, id_of(&list, "Lee")).is_empty());

    let out = u.run(&["import", "grades", &file, "-p", "P"]);
    assert!(
        out.fails(1)
            .contains("6 bad lines (listed above): nothing imported"),
        "{}",
        out.stderr
    );
    assert!(grades(&u, id_of(&list, "Lee")).is_empty());
    assert!(grades(&u, id_of(&list, "Kim")).is_empty());

    // Skipping the bad lines imports the others, and still exits 1.
    let out = u.run(&["import", "grades", &file, "-p", "P", "--skip-bad", "--json"]);
    assert!(
        out.fails(1).contains("6 bad lines skipped"),
        "{}",
        out.stderr
    );
    let summary: Value = serde_json::from_str(&out.stdout).expect("a JSON summary");
    assert_eq!(summary["imported"], 3);
    assert_eq!(summary["bad"].as_array().map(Vec::len), Some(6));
    assert_eq!(summary["bad"][0]["line"], 3);
    assert_eq!(grades(&u, id_of(&list, "Lee")).len(), 1);
    let kim = grades(&u, id_of(&list, "Kim"));
    assert_eq!(kim.len(), 2);
    assert_eq!(kim[1]["value"], "ABS");

    // A missing column is a usage error.
    let file = u.file("nocol.csv", b"number,value\n1,12\n");
    let out = u.run(&["import", "grades", &file, "-p", "P"]);
    assert!(
        out.fails(2).contains("missing column subject"),
        "{}",
        out.stderr
    );
    // Students: bad names, a number used twice in the file or already taken.
    let file = u.file(
        "bad_students.csv",
        b"first_name;last_name;number;email\nAl;;10;\nBea;Roy;11;not-an-address\nCy;Ng;12;\nDi;Li;12;\nEd;Bo;1;\n",
    );
    let out = u.run(&["import", "students", &file, "-p", "P", "--dry-run"]);
    let err = out.fails(1);
    assert!(err.contains("line 2: last_name must not be empty"), "{err}");
    assert!(
        err.contains("line 3: 'not-an-address' is not an e-mail address"),
        "{err}"
    );
    assert!(
        err.contains("line 5: number 12 is already used on line 4"),
        "{err}"
    );
    assert!(
        err.contains("line 6: a student with number 1 already exists"),
        "{err}"
    );
    assert!(!err.contains("line 4:"), "{err}");
    assert_eq!(students(&u, "P").len(), 2);
}

#[test]
fn export_then_import_gives_back_the_same_data() {
    let server = Server::plaintext();
    let u = User::admin(&server);
    u.run(&["promotion", "create", "P", "--year", "2026"]).ok();
    let add = |first: &str, last: &str, extra: &[&str]| {
        let mut args = vec!["student", "add", "P", first, last, "--json"];
        args.extend_from_slice(extra);
        u.run(&args).json()["id"].as_i64().expect("id").to_string()
    };
    let a = add(
        "Ann",
        "Lee",
        &["--number", "001", "--email", "ann@example.org"],
    );
    let b = add("Jean, dit \"Jo\"", "O'Neil", &[]);
    let _c = add("Cy", "Zed", &["--number", "003"]);
    for args in [
        vec![
            "grade",
            "add",
            &a,
            "Maths",
            "12.25",
            "--coef",
            "1.5",
            "--label",
            "Mid, term",
        ],
        vec!["grade", "add", &a, "Maths", "ABS"],
        vec!["grade", "add", &a, "Réseaux", "20"],
        vec!["grade", "add", &b, "Maths", "EXC", "--coef", "3"],
        vec!["grade", "add", &b, "Maths", "ATT"],
        vec!["grade", "add", &b, "Physics", "0.5"],
    ] {
        u.run(&args).ok();
    }
    let before_show = u.run(&["promotion", "show", "P", "--json"]).json();
    let path = u.home().join("p.csv");
    let path = path.to_str().expect("utf-8");
    let out = u.run(&["export", "promotion", "P", "-o", path]);
    assert!(
        out.stderr.contains("Exported 3 students and 6 grades of P"),
        "{}",
        out.stderr
    );
    let first = std::fs::read_to_string(path).expect("the export");
    assert!(
        first.starts_with(
            "student,last_name,first_name,number,email,subject,value,coefficient,label\n"
        ),
        "{first}"
    );
    assert!(
        first.contains(",Maths,12.25,1.5,\"Mid, term\"\n"),
        "{first}"
    );
    assert!(first.contains("\"Jean, dit \"\"Jo\"\"\""), "{first}");
    assert!(
        first.contains(",Zed,Cy,003,,,,,\n"),
        "a student without grades: {first}"
    );
    // To stdout, the same.
    assert_eq!(u.run(&["export", "promotion", "P"]).ok(), first);

    // Start over from the file alone.
    u.run(&["promotion", "delete", "P", "--force"]).ok();
    u.run(&["promotion", "create", "P", "--year", "2026"]).ok();
    let out = u.run(&["import", "students", path, "-p", "P"]);
    assert!(
        out.ok()
            .contains("Imported 3 students into P (4 repeated lines merged)."),
        "{}",
        out.stdout
    );
    let out = u.run(&["import", "grades", path, "-p", "P"]);
    assert!(
        out.ok()
            .contains("Imported 6 grades into P (1 line without a grade skipped)."),
        "{}",
        out.stdout
    );

    let second = u.run(&["export", "promotion", "P"]).ok().to_owned();
    let without_ids = |csv: &str| -> Vec<String> {
        csv.lines()
            .map(|l| {
                l.split_once(',')
                    .map(|(_, rest)| rest.to_owned())
                    .unwrap_or_default()
            })
            .collect()
    };
    assert_eq!(without_ids(&first), without_ids(&second));
    // Same averages and ranks too.
    let after_show = u.run(&["promotion", "show", "P", "--json"]).json();
    let summary = |v: &Value| -> Vec<(Value, Value, Value)> {
        v["students"]
            .as_array()
            .expect("students")
            .iter()
            .map(|s| {
                (
                    s["last_name"].clone(),
                    s["average"].clone(),
                    s["rank"].clone(),
                )
            })
            .collect()
    };
    assert_eq!(summary(&before_show), summary(&after_show));

    // French spreadsheet flavour round-trips too.
    let fr = u
        .run(&[
            "export",
            "promotion",
            "P",
            "--separator",
            ";",
            "--decimal-comma",
        ])
        .ok()
        .to_owned();
    assert!(fr.contains(";Maths;12,25;1,5;Mid, term\n"), "{fr}");
    u.run(&["promotion", "create", "Q"]).ok();
    let fr_path = u.file(
        "fr.csv",
        fr.replace("001", "101").replace("003", "103").as_bytes(),
    );
    u.run(&["import", "students", &fr_path, "-p", "Q"]).ok();
    u.run(&["import", "grades", &fr_path, "-p", "Q"]).ok();
    let q = u.run(&["export", "promotion", "Q"]).ok().to_owned();
    assert_eq!(
        without_ids(&q),
        without_ids(&second.replace("001", "101").replace("003", "103"))
    );
}

#[test]
fn a_refusal_from_the_server_undoes_the_whole_import() {
    let server = Server::plaintext();
    let admin = User::admin(&server);
    let mut cmd = admin.command(&["user", "create", "t", "--role", "teacher"]);
    cmd.env("GRADEBOOK_NEW_PASSWORD", "teacher password");
    admin.run_with(cmd, "").ok();
    // A number the teacher cannot see: only the server knows it is taken.
    admin.run(&["promotion", "create", "Other"]).ok();
    admin
        .run(&["student", "add", "Other", "X", "Y", "--number", "500"])
        .ok();

    let teacher = User::new(&server);
    teacher.login("t", "teacher password");
    teacher.run(&["promotion", "create", "Mine"]).ok();
    let file = teacher.file(
        "s.csv",
        b"first_name,last_name,number\nA,One,498\nB,Two,499\nC,Three,500\nD,Four,501\n",
    );
    // The server checks it before anything is written, in a dry run too.
    let out = teacher.run(&["import", "students", &file, "-p", "Mine", "--dry-run"]);
    assert!(
        out.fails(1)
            .contains("line 4: a student with number 500 already exists in another promotion"),
        "{}",
        out.stderr
    );
    let out = teacher.run(&["import", "students", &file, "-p", "Mine"]);
    let err = out.fails(1);
    assert!(err.contains("line 4: a student with number 500"), "{err}");
    assert!(
        err.contains("1 bad line (listed above): nothing imported"),
        "{err}"
    );
    assert!(students(&teacher, "Mine").is_empty());

    let out = teacher.run(&["import", "students", &file, "-p", "Mine", "--skip-bad"]);
    out.fails(1);
    assert!(
        out.stdout
            .contains("Imported 3 students into Mine. Skipped 1 bad line"),
        "{}",
        out.stdout
    );
    assert_eq!(students(&teacher, "Mine").len(), 3);
}

#[test]
fn grades_by_student_id_and_a_long_pipelined_import() {
    let server = Server::plaintext();
    let u = User::admin(&server);
    u.run(&["promotion", "create", "P"]).ok();
    let mut ids = Vec::new();
    for i in 0..20 {
        let s = u
            .run(&[
                "student",
                "add",
                "P",
                &format!("F{i}"),
                &format!("L{i}"),
                "--json",
            ])
            .json();
        ids.push(s["id"].as_i64().expect("id"));
    }
    // By id; an id not in the promotion is a bad line.
    let file = u.file(
        "byid.csv",
        format!(
            "student,subject,value\n{},Maths,12\n999999,Maths,3\n",
            ids[0]
        )
        .as_bytes(),
    );
    let out = u.run(&["import", "grades", &file, "-p", "P", "--dry-run"]);
    assert!(
        out.fails(1).contains("line 3: student 999999 is not in P"),
        "{}",
        out.stderr
    );
    // The promotion is always named.
    let file = u.file("byname.csv", b"number,subject,value\n1,Maths,3\n");
    let out = u.run(&["import", "grades", &file]);
    assert!(out.fails(2).contains("--promotion"), "{}", out.stderr);

    // 2,000 grades in one pipelined import.
    let mut csv = String::from("student,subject,value,coefficient\n");
    let mut expected_sum = 0u64;
    for k in 0..2000u64 {
        let hundredths = (k * 37) % 2001;
        expected_sum += hundredths;
        let id = ids[(k % 20) as usize];
        csv.push_str(&format!(
            "{id},S{},{}.{:02},1\n",
            k % 5,
            hundredths / 100,
            hundredths % 100
        ));
    }
    let file = u.file("big.csv", csv.as_bytes());
    let out = u.run(&["import", "grades", &file, "-p", "P"]);
    assert_eq!(out.ok().trim(), "Imported 2000 grades into P.");
    let mut total = 0u64;
    let mut count = 0;
    for id in &ids {
        for g in grades(&u, *id) {
            total += (g["value"].as_f64().expect("a number") * 100.0).round() as u64;
            count += 1;
        }
    }
    assert_eq!((count, total), (2000, expected_sum));
}

#[test]
fn an_unknown_column_is_refused_until_ignored_and_a_second_import_adds_nothing() {
    let server = Server::plaintext();
    let u = User::admin(&server);
    u.run(&["promotion", "create", "BUT1"]).ok();
    let file = u.file(
        "etudiants.csv",
        "Nom;Prénom;Numéro\nLefèvre;Élodie;1\nO'Brien;Seán;2\nÇelik;Deniz;\n".as_bytes(),
    );
    u.run(&["import", "students", &file, "-p", "BUT1"]).ok();

    // "Coefficient UE" is not a column the import knows: it is not
    // silently dropped (every coefficient would become 1).
    let notes = "NOM;prénom;Matière;Note;Coefficient UE;Évaluation\n\
        LEFÈVRE;élodie;Réseaux;12,5;3;TP1\n\
        o'brien;SEÁN;Réseaux;;3;TP1\n\
        Çelik;Deniz;Réseaux;ABS;3;TP1\n";
    let file = u.file("notes.csv", notes.as_bytes());
    let out = u.run(&["import", "grades", &file, "-p", "BUT1"]);
    let err = out.fails(2);
    assert!(err.contains("unknown column 'Coefficient UE'"), "{err}");
    assert!(err.contains("coefficient (coef)"), "{err}");
    assert!(err.contains("--ignore-column"), "{err}");

    let args = [
        "import",
        "grades",
        &file,
        "-p",
        "BUT1",
        "--ignore-column",
        "Coefficient UE",
    ];
    let out = u.run(&args);
    assert_eq!(
        out.ok().trim(),
        "Imported 2 grades into BUT1 (1 line without a grade skipped)."
    );
    // The same file again: nothing added, every grade already present.
    let out = u.run(&args);
    assert_eq!(
        out.ok().trim(),
        "Imported 0 grades into BUT1 (2 grades already present, 1 line without a grade skipped)."
    );
    let file = u.file(
        "etudiants.csv",
        "Nom;Prénom;Numéro\nLefèvre;Élodie;1\nO'Brien;Seán;2\nÇELIK;deniz;\n".as_bytes(),
    );
    let out = u.run(&["import", "students", &file, "-p", "BUT1"]);
    assert_eq!(
        out.ok().trim(),
        "Imported 0 students into BUT1 (3 students already present)."
    );
    let list = students(&u, "BUT1");
    assert_eq!(list.len(), 3);
    assert_eq!(grades(&u, id_of(&list, "Lefèvre"))[0]["value"], 12.5);
    assert_eq!(grades(&u, id_of(&list, "Çelik"))[0]["value"], "ABS");
}

#[test]
fn a_workbook_exports_and_imports_back_and_a_french_csv_starts_with_a_bom() {
    let server = Server::plaintext();
    let u = User::admin(&server);
    u.run(&["promotion", "create", "RT2/A"]).ok();
    let file = u.file(
        "s.csv",
        "last_name,first_name,number\nLefèvre,Élodie,1\nMartin,Zoé,2\n".as_bytes(),
    );
    u.run(&["import", "students", &file, "-p", "RT2/A"]).ok();
    let file = u.file(
        "g.csv",
        b"number,subject,value,coefficient,label\n1,Maths,12.34,1.5,TP\n2,Maths,ATT,1,\n",
    );
    u.run(&["import", "grades", &file, "-p", "RT2/A"]).ok();

    let fr = u
        .run(&[
            "export",
            "promotion",
            "RT2/A",
            "--separator",
            ";",
            "--decimal-comma",
        ])
        .ok()
        .to_owned();
    assert!(fr.starts_with("\u{feff}student;last_name;"), "{fr:?}");
    assert!(fr.contains(";Maths;12,34;1,5;TP\n"), "{fr}");

    // A workbook without -o is refused: it is not text for a terminal.
    let out = u.run(&["export", "promotion", "RT2/A", "--format", "xlsx"]);
    assert!(out.fails(2).contains("-o FILE.xlsx"), "{}", out.stderr);
    let path = u.home().join("rt2.xlsx");
    let path = path.to_str().expect("utf-8");
    u.run(&[
        "export",
        "promotion",
        "RT2/A",
        "--format",
        "xlsx",
        "-o",
        path,
    ])
    .ok();
    let bytes = std::fs::read(path).expect("the workbook");
    assert!(bytes.starts_with(b"PK\x03\x04"), "a zip archive");

    // Back into a new promotion, from the workbook's sheet (named after the
    // promotion, '/' replaced). Numbers are unique across promotions: the
    // original goes first.
    u.run(&["promotion", "delete", "RT2/A", "--force"]).ok();
    u.run(&["promotion", "create", "Copy"]).ok();
    u.run(&["import", "students", path, "-p", "Copy"]).ok();
    let out = u.run(&["import", "grades", path, "-p", "Copy", "--sheet", "RT2_A"]);
    assert_eq!(out.ok().trim(), "Imported 2 grades into Copy.");
    let out = u.run(&["import", "grades", path, "-p", "Copy", "--sheet", "Nope"]);
    assert!(
        out.fails(2)
            .contains("no sheet named 'Nope' (the workbook has: RT2_A)"),
        "{}",
        out.stderr
    );
    let list = students(&u, "Copy");
    let g = grades(&u, id_of(&list, "Lefèvre"));
    assert_eq!(
        (g[0]["value"].as_f64(), g[0]["coefficient"].as_f64()),
        (Some(12.34), Some(1.5))
    );
    assert_eq!(g[0]["label"], "TP");
    assert_eq!(grades(&u, id_of(&list, "Martin"))[0]["value"], "ATT");
}
