//! Shared harness: loads each real schema file from ../shared once and gives terse helpers.
//! A missing file is a hard failure with the loader's message, never a skip.

#![allow(dead_code)] // each test binary uses a different subset of the helpers

use std::collections::BTreeMap;
use std::sync::OnceLock;

use pve_schema::{PveMajor, Rejection, Schema, Validated};

pub const BOTH: [PveMajor; 2] = [PveMajor::V8, PveMajor::V9];

pub fn schema(v: PveMajor) -> &'static Schema {
    static V8: OnceLock<Schema> = OnceLock::new();
    static V9: OnceLock<Schema> = OnceLock::new();
    let cell = match v {
        PveMajor::V8 => &V8,
        PveMajor::V9 => &V9,
    };
    cell.get_or_init(|| match Schema::load_shared(v) {
        Ok(s) => s,
        Err(e) => panic!("the real PVE schema must be present for these tests:\n{e}"),
    })
}

pub fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn ok(v: PveMajor, method: &str, path: &str, pairs: &[(&str, &str)]) -> Validated {
    match schema(v).validate(method, path, &form(pairs)) {
        Ok(valid) => valid,
        Err(rej) => panic!("{v:?} {method} {path} should pass, got:\n{rej}"),
    }
}

/// The 400 error map of a request that must fail parameter verification.
pub fn errors(
    v: PveMajor,
    method: &str,
    path: &str,
    pairs: &[(&str, &str)],
) -> BTreeMap<String, String> {
    match schema(v).validate(method, path, &form(pairs)) {
        Ok(valid) => panic!("{v:?} {method} {path} {pairs:?} should fail, but passed as {valid:?}"),
        Err(rej) => {
            assert_eq!(rej.status(), 400, "{rej}");
            assert_eq!(rej.status_text(), "Parameter verification failed.");
            let body = rej.body();
            assert_eq!(body["data"], serde_json::Value::Null);
            assert_eq!(body["message"], "Parameter verification failed.\n");
            match rej {
                Rejection::Parameters { errors } => {
                    assert_eq!(
                        body["errors"],
                        serde_json::to_value(&errors).unwrap_or_default()
                    );
                    errors
                }
                other => panic!("expected a 400, got {other:?}"),
            }
        }
    }
}

/// Asserts that exactly one parameter fails, with exactly this message.
pub fn only_error(
    v: PveMajor,
    method: &str,
    path: &str,
    pairs: &[(&str, &str)],
    key: &str,
    msg: &str,
) {
    let errs = errors(v, method, path, pairs);
    let expected: BTreeMap<String, String> = [(key.to_string(), msg.to_string())].into();
    assert_eq!(errs, expected, "{v:?} {method} {path} {pairs:?}");
}

/// A valid container-create request as Launch sends it, plus `extra` overriding/adding fields.
pub fn create_ct(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut base = vec![
        ("ostemplate", "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst"),
        ("vmid", "123"),
        ("hostname", "vikunja"),
        ("unprivileged", "1"),
        ("features", "nesting=1"),
        ("net0", "name=eth0,bridge=vmbr0,ip=dhcp"),
        ("rootfs", "local-lvm:8"),
        ("cores", "2"),
        ("memory", "1024"),
        ("swap", "512"),
        ("tags", "launch;vikunja"),
        ("description", "Vikunja, installed by Launch"),
        ("onboot", "1"),
        ("start", "0"),
        ("ssh-public-keys", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl admin@pve"),
        ("nameserver", "1.1.1.1 9.9.9.9"),
        ("searchdomain", "lan"),
    ];
    for (k, v) in extra {
        base.retain(|(bk, _)| bk != k);
        base.push((k, v));
    }
    base
}
