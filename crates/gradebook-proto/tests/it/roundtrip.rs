//! Every request and every reply survives both encodings: a command with
//! arbitrary typed arguments, put in a `Request`, encoded in JSON or in
//! MessagePack (maps with string keys, `to_vec_named`) and decoded again is
//! the same command; so is every reply data type and every error.

use gradebook_core::{Coefficient, Grade, GradeInput, GradeValue, Promotion, Role, Student, User};
use gradebook_proto::command::*;
use gradebook_proto::data::*;
use gradebook_proto::{Command, Encoding, ErrorCode, Id, Reply, Request, Secret, WireError};
use proptest::option::of;
use proptest::prelude::*;
use proptest::strategy::Union;
use serde::Serialize;
use serde::de::DeserializeOwned;

fn text() -> impl Strategy<Value = String> {
    // Any Unicode, control characters and quotes included.
    any::<String>()
}

fn secret() -> impl Strategy<Value = Secret> {
    text().prop_map(Secret::new)
}

/// Any finite number: JSON has no NaN or infinities. (Exact round trips
/// need serde_json's `float_roundtrip` feature, which this crate turns on:
/// the default parser can be one unit in the last place off.)
fn number() -> impl Strategy<Value = f64> {
    any::<f64>().prop_filter("finite", |x| x.is_finite())
}

fn grade_input() -> impl Strategy<Value = GradeInput> {
    prop_oneof![
        number().prop_map(GradeInput::Number),
        text().prop_map(GradeInput::Mark)
    ]
}

/// Absent, null, or a value.
fn nullable<T: std::fmt::Debug + Clone + 'static>(
    s: impl Strategy<Value = T> + 'static,
) -> impl Strategy<Value = Option<Option<T>>> {
    of(of(s))
}

fn id() -> impl Strategy<Value = Id> {
    prop_oneof![any::<i64>().prop_map(Id::Int), text().prop_map(Id::Str)]
}

/// Every command, each with arbitrary arguments of its own type.
fn command() -> impl Strategy<Value = Command> {
    use Command as C;
    let no_args = || Just(NoArgs {});
    let promotion_args = || text().prop_map(|name| PromotionArgs { name });
    let grant_args = || (text(), text()).prop_map(|(name, username)| GrantArgs { name, username });
    let id_args = || any::<i64>().prop_map(|id| IdArgs { id });
    Union::new(vec![
        of(text())
            .prop_map(|encoding| C::Hello(HelloArgs { encoding }))
            .boxed(),
        no_args().prop_map(C::Ping).boxed(),
        (text(), secret())
            .prop_map(|(username, password)| C::Login(LoginArgs { username, password }))
            .boxed(),
        no_args().prop_map(C::Logout).boxed(),
        no_args().prop_map(C::Whoami).boxed(),
        (text(), secret(), text(), of(any::<i64>()))
            .prop_map(|(username, password, role, student)| {
                C::UserCreate(UserCreateArgs {
                    username,
                    password,
                    role,
                    student,
                })
            })
            .boxed(),
        no_args().prop_map(C::UserList).boxed(),
        text()
            .prop_map(|username| C::UserDelete(UsernameArgs { username }))
            .boxed(),
        (secret(), of(secret()), of(text()))
            .prop_map(|(new, old, username)| {
                C::UserPassword(UserPasswordArgs { new, old, username })
            })
            .boxed(),
        (text(), of(any::<i64>()), of(text()), of(text()))
            .prop_map(|(name, year, description, publication)| {
                C::PromotionCreate(PromotionCreateArgs {
                    name,
                    year,
                    description,
                    publication,
                })
            })
            .boxed(),
        (text(), of(of(any::<i64>())), of(of(text())), of(text()))
            .prop_map(|(name, year, description, publication)| {
                C::PromotionUpdate(PromotionUpdateArgs {
                    name,
                    year,
                    description,
                    publication,
                })
            })
            .boxed(),
        promotion_args().prop_map(C::PromotionLock).boxed(),
        promotion_args().prop_map(C::PromotionUnlock).boxed(),
        publish_args().prop_map(C::GradePublish).boxed(),
        publish_args().prop_map(C::GradeUnpublish).boxed(),
        no_args().prop_map(C::PromotionList).boxed(),
        promotion_args().prop_map(C::PromotionShow).boxed(),
        (text(), of(any::<bool>()))
            .prop_map(|(name, force)| C::PromotionDelete(PromotionDeleteArgs { name, force }))
            .boxed(),
        grant_args().prop_map(C::PromotionGrant).boxed(),
        grant_args().prop_map(C::PromotionRevoke).boxed(),
        promotion_args().prop_map(C::PromotionAverage).boxed(),
        promotion_args().prop_map(C::PromotionSubjects).boxed(),
        (text(), text(), text(), of(text()), of(text()))
            .prop_map(|(promotion, first_name, last_name, number, email)| {
                C::StudentAdd(StudentAddArgs {
                    promotion,
                    first_name,
                    last_name,
                    number,
                    email,
                })
            })
            .boxed(),
        text()
            .prop_map(|promotion| C::StudentList(StudentListArgs { promotion }))
            .boxed(),
        (
            any::<i64>(),
            of(text()),
            of(text()),
            nullable(text()),
            nullable(text()),
            of(text()),
        )
            .prop_map(|(id, first_name, last_name, number, email, promotion)| {
                C::StudentUpdate(StudentUpdateArgs {
                    id,
                    first_name,
                    last_name,
                    number,
                    email,
                    promotion,
                })
            })
            .boxed(),
        id_args().prop_map(C::StudentRemove).boxed(),
        id_args().prop_map(C::StudentShow).boxed(),
        id_args().prop_map(C::StudentAverage).boxed(),
        id_args().prop_map(C::StudentExplain).boxed(),
        (
            any::<i64>(),
            text(),
            grade_input(),
            of(number()),
            of(text()),
        )
            .prop_map(|(student, subject, value, coefficient, label)| {
                C::GradeAdd(GradeAddArgs {
                    student,
                    subject,
                    value,
                    coefficient,
                    label,
                })
            })
            .boxed(),
        (
            any::<i64>(),
            of(grade_input()),
            of(number()),
            of(text()),
            nullable(text()),
        )
            .prop_map(|(id, value, coefficient, subject, label)| {
                C::GradeUpdate(GradeUpdateArgs {
                    id,
                    value,
                    coefficient,
                    subject,
                    label,
                })
            })
            .boxed(),
        id_args().prop_map(C::GradeDelete).boxed(),
        any::<i64>()
            .prop_map(|student| C::GradeList(GradeListArgs { student }))
            .boxed(),
        (of(text()), of(any::<i64>()), of(any::<u32>()))
            .prop_map(|(promotion, student, limit)| {
                C::AuditList(AuditListArgs {
                    promotion,
                    student,
                    limit,
                })
            })
            .boxed(),
    ])
}

fn encode<T: Serialize>(encoding: Encoding, message: &T) -> Vec<u8> {
    gradebook_proto::codec::to_datagram(encoding, message).expect("encodes")
}

const BOTH: [Encoding; 2] = [Encoding::Json, Encoding::Msgpack];

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::Admin), Just(Role::Teacher), Just(Role::Student)]
}

fn grade_value() -> impl Strategy<Value = GradeValue> {
    (-3i64..=2000).prop_map(|code| GradeValue::from_code(code).expect("a valid code"))
}

fn coefficient() -> impl Strategy<Value = Coefficient> {
    (1i64..=10_000).prop_map(|h| Coefficient::from_hundredths(h).expect("a valid coefficient"))
}

fn grade() -> impl Strategy<Value = Grade> {
    (
        any::<i64>(),
        any::<i64>(),
        text(),
        grade_value(),
        coefficient(),
        of(text()),
        any::<bool>(),
    )
        .prop_map(
            |(id, student, subject, value, coefficient, label, published)| Grade {
                id,
                student,
                subject,
                value,
                coefficient,
                label,
                published,
            },
        )
}

fn student() -> impl Strategy<Value = Student> {
    (any::<i64>(), text(), text(), of(text()), of(text()), text()).prop_map(
        |(id, first_name, last_name, number, email, promotion)| Student {
            id,
            first_name,
            last_name,
            number,
            email,
            promotion,
        },
    )
}

fn promotion() -> impl Strategy<Value = Promotion> {
    (
        text(),
        of(any::<i64>()),
        of(text()),
        any::<u64>(),
        publication(),
        any::<bool>(),
    )
        .prop_map(
            |(name, year, description, students, publication, locked)| Promotion {
                name,
                year,
                description,
                students,
                publication,
                locked,
            },
        )
}

fn publication() -> impl Strategy<Value = Publication> {
    prop_oneof![Just(Publication::Immediate), Just(Publication::Manual)]
}

fn publish_args() -> impl Strategy<Value = PublishArgs> {
    (
        text(),
        of(text()),
        of(text()),
        of(proptest::collection::vec(any::<i64>(), 0..4)),
    )
        .prop_map(|(promotion, subject, label, ids)| PublishArgs {
            promotion,
            subject,
            label,
            ids,
        })
}

fn user() -> impl Strategy<Value = User> {
    (text(), role(), of(any::<i64>())).prop_map(|(username, role, student)| User {
        username,
        role,
        student,
    })
}

fn ranked_student() -> impl Strategy<Value = RankedStudent> {
    (
        (any::<i64>(), text(), text(), of(text()), of(text())),
        (of(number()), of(any::<u32>()), any::<bool>()),
    )
        .prop_map(
            |((id, first_name, last_name, number, email), (average, rank, incomplete))| {
                RankedStudent {
                    id,
                    first_name,
                    last_name,
                    number,
                    email,
                    average,
                    rank,
                    incomplete,
                }
            },
        )
}

fn subject_stats() -> impl Strategy<Value = SubjectStats> {
    (
        text(),
        of(number()),
        of(number()),
        of(number()),
        any::<u64>(),
    )
        .prop_map(|(subject, average, min, max, count)| SubjectStats {
            subject,
            average,
            min,
            max,
            count,
        })
}

fn subject_average() -> impl Strategy<Value = SubjectAverage> {
    (text(), of(number()), number()).prop_map(|(subject, average, coefficients)| SubjectAverage {
        subject,
        average,
        coefficients,
    })
}

fn promotion_average() -> impl Strategy<Value = PromotionAverage> {
    (
        (
            text(),
            of(number()),
            any::<u64>(),
            of(number()),
            of(number()),
        ),
        (of(number()), of(number()), of(number()), of(number())),
        (
            proptest::collection::vec(any::<u32>(), 20),
            any::<u64>(),
            any::<u64>(),
        ),
    )
        .prop_map(
            |(
                (name, average, count, min, max),
                (median, q1, q3, stddev),
                (histogram, students, incomplete),
            )| PromotionAverage {
                name,
                average,
                count,
                min,
                max,
                median,
                q1,
                q3,
                stddev,
                histogram,
                students,
                incomplete,
            },
        )
}

fn student_show() -> impl Strategy<Value = StudentShow> {
    (
        (any::<i64>(), text(), text(), of(text()), of(text()), text()),
        (
            proptest::collection::vec(grade(), 0..4),
            of(number()),
            any::<bool>(),
            proptest::collection::vec(subject_average(), 0..4),
            of(any::<u32>()),
            any::<u32>(),
        ),
    )
        .prop_map(
            |(
                (id, first_name, last_name, number, email, promotion),
                (grades, average, incomplete, subjects, rank, of),
            )| StudentShow {
                id,
                first_name,
                last_name,
                number,
                email,
                promotion,
                grades,
                average,
                incomplete,
                subjects,
                rank,
                of,
            },
        )
}

fn error_code() -> impl Strategy<Value = ErrorCode> {
    proptest::sample::select(vec![
        ErrorCode::BadRequest,
        ErrorCode::UnknownCommand,
        ErrorCode::Unauthenticated,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::InvalidValue,
        ErrorCode::FrameTooLarge,
        ErrorCode::TooLarge,
        ErrorCode::InsecureTransport,
        ErrorCode::RateLimited,
        ErrorCode::Internal,
    ])
}

/// A reply carrying `data` comes back, in both encodings, as the same
/// typed value.
fn assert_data_round_trips<T>(id: Option<Id>, data: &T) -> Result<(), TestCaseError>
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let value = serde_json::to_value(data).expect("to a value");
    let reply = Reply::ok(id, value);
    for encoding in BOTH {
        let decoded = Reply::decode(encoding, &encode(encoding, &reply))
            .map_err(|e| TestCaseError::fail(format!("{encoding:?}: {e}")))?;
        prop_assert_eq!(&decoded.id, &reply.id);
        let back: T = serde_json::from_value(decoded.result.expect("a success"))
            .map_err(|e| TestCaseError::fail(format!("{encoding:?}: {e}")))?;
        prop_assert_eq!(&back, data, "{:?}", encoding);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_request_round_trips(
        id in of(id()),
        command in command(),
        token in of(secret()),
        pad in of(text()),
    ) {
        let mut request = Request::new(id.clone(), &command);
        request.token = token;
        request.pad = pad;
        for encoding in BOTH {
            let bytes = encode(encoding, &request);
            let mut decoded = Request::decode(encoding, &bytes)
                .map_err(|(_, e)| TestCaseError::fail(format!("{encoding:?}: {e}")))?;
            prop_assert_eq!(&decoded, &request);
            prop_assert_eq!(decoded.command(), Ok(command.clone()));
        }
    }

    #[test]
    fn error_replies_round_trip(id in of(id()), code in error_code(), message in text()) {
        let reply = Reply::error(id, WireError::new(code, message));
        for encoding in BOTH {
            let decoded = Reply::decode(encoding, &encode(encoding, &reply));
            prop_assert_eq!(decoded, Ok(reply.clone()));
        }
    }

    #[test]
    fn entity_replies_round_trip(
        id in of(id()),
        p in promotion(),
        s in student(),
        g in grade(),
        u in user(),
    ) {
        assert_data_round_trips(id.clone(), &p)?;
        assert_data_round_trips(id.clone(), &s)?;
        assert_data_round_trips(id.clone(), &g)?;
        assert_data_round_trips(id, &u)?;
    }

    #[test]
    fn account_replies_round_trip(
        id in of(id()),
        hello in (text(), text(), any::<u32>(), proptest::collection::vec(text(), 0..3)),
        pong in any::<bool>(),
        login in (secret(), role(), any::<u64>()),
        whoami in (text(), role(), of(any::<i64>())),
        users in proptest::collection::vec(user(), 0..4),
    ) {
        let (server, version, protocol, encodings) = hello;
        assert_data_round_trips(id.clone(), &Hello { server, version, protocol, encodings })?;
        assert_data_round_trips(id.clone(), &Pong { pong })?;
        let (token, role, expires_in) = login;
        assert_data_round_trips(id.clone(), &Login { token, role, expires_in })?;
        let (username, role, student) = whoami;
        assert_data_round_trips(id.clone(), &Whoami { username, role, student })?;
        assert_data_round_trips(id, &Users { users })?;
    }

    #[test]
    fn list_and_statistics_replies_round_trip(
        id in of(id()),
        promotions in proptest::collection::vec(promotion(), 0..4),
        students in proptest::collection::vec(student(), 0..4),
        grades in proptest::collection::vec(grade(), 0..4),
        show in (text(), of(any::<i64>()), of(text()), proptest::collection::vec(ranked_student(), 0..4)),
        average in promotion_average(),
        subjects in (text(), proptest::collection::vec(subject_stats(), 0..4)),
        student_show in student_show(),
        student_average in (any::<i64>(), of(number()), any::<u64>(), number(), any::<bool>()),
    ) {
        assert_data_round_trips(id.clone(), &Promotions { promotions })?;
        assert_data_round_trips(id.clone(), &Students { students })?;
        assert_data_round_trips(id.clone(), &Grades { grades })?;
        let (name, year, description, students) = show;
        let show = PromotionShow {
            name,
            year,
            description,
            publication: Publication::Manual,
            locked: true,
            students,
        };
        assert_data_round_trips(id.clone(), &show)?;
        assert_data_round_trips(id.clone(), &average)?;
        let (name, subjects) = subjects;
        assert_data_round_trips(id.clone(), &PromotionSubjects { name, subjects })?;
        assert_data_round_trips(id.clone(), &student_show)?;
        let (sid, average, counted, coefficients, incomplete) = student_average;
        assert_data_round_trips(
            id,
            &StudentAverage { id: sid, average, counted, coefficients, incomplete },
        )?;
    }
}

#[test]
fn messagepack_uses_maps_with_string_keys() {
    let request = Request::new(Some(Id::Int(1)), &Command::Ping(NoArgs {}));
    let bytes = encode(Encoding::Msgpack, &request);
    // fixmap of 3 entries, first key "id".
    assert_eq!(&bytes[..4], &[0x83, 0xa2, b'i', b'd']);
    assert_eq!(Encoding::sniff(&bytes), Encoding::Msgpack);
}
