//! Updates between fixture versions on SQLite, and the broken v3.0.0.

use crate::harness::{release, round_trip_and_upgrade, Instance};

#[test]
fn sqlite_v1_to_v2_keeps_rows_and_v1_refuses_the_migrated_database() {
    round_trip_and_upgrade(&Instance::sqlite());
}

#[test]
fn v3_starts_but_is_unhealthy_and_still_reports_its_version() {
    let v3 = release("v3.0.0");
    let instance = Instance::sqlite();
    let server = instance.start(v3);
    let health = server.http.get(server.url("/health")).send().unwrap();
    assert_eq!(health.status().as_u16(), 500);
    assert_eq!(server.get_json("/api/v1/info")["version"], "v3.0.0");
    assert_eq!(instance.run(v3, &["healthcheck"]).status.code(), Some(1));
    let doctor = instance.run(v3, &["doctor"]);
    assert_eq!(doctor.status.code(), Some(1));
    assert!(doctor.stdout.contains("marked broken"), "{}", doctor.stdout);
    server.stop_ok();
}
