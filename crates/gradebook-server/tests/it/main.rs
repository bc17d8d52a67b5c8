//! The server's integration tests, in one binary: a real server on port 0
//! (see [`common`]) driven over the wire by the real client.

mod common;

mod fuzz_corpus;
mod import;
mod integration;
mod permissions;
mod publication;
mod python_client;
mod quic;
mod quic_watch;
mod storage_full;
mod strict_values;
mod trust;
mod udp;
mod watch;
mod web;
mod web_admin;
mod web_teacher;
