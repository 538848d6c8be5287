//! The task round trip and the v1 → v2 migration against real PostgreSQL and MariaDB servers,
//! with the password passed the way Launch does it: VIKUNJA_DATABASE_PASSWORD, not the file.

use crate::dbservers::{MariaDb, Postgres};
use crate::harness::{release, round_trip_and_upgrade, Instance};

#[test]
fn postgres_round_trip_and_upgrade() {
    let db = Postgres::start();
    let mut instance = Instance::new(&db.database_yaml());
    instance
        .env
        .insert("VIKUNJA_DATABASE_PASSWORD".into(), db.password.clone());
    round_trip_and_upgrade(&instance);

    let wrong = {
        let mut other = Instance::new(&db.database_yaml());
        other
            .env
            .insert("VIKUNJA_DATABASE_PASSWORD".into(), "wrong-password".into());
        other.run(release("v2.0.0"), &["healthcheck"])
    };
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        wrong.stderr.contains("vikunja@127.0.0.1") && !wrong.stderr.contains("wrong-password"),
        "{wrong:?}"
    );

    // /health follows the database: 200 while it answers, 500 once it is gone.
    let server = instance.start(release("v2.0.0"));
    let health = |server: &crate::harness::Server| {
        let resp = server.http.get(server.url("/health")).send().unwrap();
        resp.status().as_u16()
    };
    assert_eq!(health(&server), 200);
    db.stop();
    assert_eq!(health(&server), 500);
    server.stop_ok();
}

#[test]
fn mariadb_round_trip_and_upgrade() {
    let db = MariaDb::start();
    let mut instance = Instance::new(&db.database_yaml());
    instance
        .env
        .insert("VIKUNJA_DATABASE_PASSWORD".into(), db.password.clone());
    round_trip_and_upgrade(&instance);
    let info = {
        let server = instance.start(release("v2.0.0"));
        let info = server.get_json("/api/v1/info");
        server.stop_ok();
        info
    };
    assert_eq!(info["concurrent_writes"], true);
}
