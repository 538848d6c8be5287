//! End-to-end tests of the packaged fixture: every test runs binaries unzipped from real release
//! zips written by `fixture-app package`, on 127.0.0.1, with SQLite, PostgreSQL and MariaDB.

mod databases;
mod dbservers;
mod dump;
mod harness;
mod packaging;
mod server;
mod shutdown;
mod upgrade;
