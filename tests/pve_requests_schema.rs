//! Every request builder in `launch::pve::requests`, called with representative inputs,
//! must pass PVE's own API schema (apidata.json) for both PVE 8.4 and 9.1. A builder that
//! is added without a case here fails `every_builder_is_covered`.

use std::collections::BTreeSet;

use launch::pve::requests::{self, ApiRequest, BUILDERS};
use launch::pve::{
    BackupMode, Compress, ContentType, CreateCt, CtConfigUpdate, Features, IpConfig, NetConfig,
    ResourceType, RootFs, Secret, Upid, Vzdump,
};
use pve_schema::{PveMajor, Schema};

/// `case!(builder(args))` records the builder's own name next to the request it built,
/// so a case can never be filed under the wrong builder.
macro_rules! case {
    ($f:ident ( $($a:expr),* $(,)? )) => {
        (stringify!($f), requests::$f($($a),*))
    };
}

fn static_net() -> NetConfig {
    NetConfig {
        name: "eth0".into(),
        bridge: "vmbr0".into(),
        ip: IpConfig::Static {
            cidr: "192.168.1.50/24".into(),
            gw: Some("192.168.1.1".parse().unwrap()),
        },
        tag: Some(20),
        mtu: Some(1450),
        firewall: true,
    }
}

fn dhcp_net() -> NetConfig {
    NetConfig {
        name: "eth0".into(),
        bridge: "vmbr1".into(),
        ip: IpConfig::Dhcp,
        tag: None,
        mtu: None,
        firewall: false,
    }
}

fn full_ct() -> CreateCt {
    CreateCt {
        vmid: 101,
        ostemplate: "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst".into(),
        hostname: "vikunja.home.arpa".into(),
        cores: 2,
        memory: 1024,
        swap: 512,
        rootfs: RootFs {
            storage: "local-lvm".into(),
            size_gib: 8,
        },
        net0: static_net(),
        features: Features { nesting: true },
        tags: vec!["launch".into(), "app-vikunja".into()],
        description: Some(
            "Managed by Launch: vikunja\n\nDo not edit; `launch status vikunja` & co.".into(),
        ),
        onboot: true,
        start: true,
        nameserver: vec!["1.1.1.1".into(), "2606:4700:4700::1111".into()],
        searchdomain: Some("home.arpa".into()),
        ssh_public_keys: Some(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB admin@laptop\nssh-rsa AAAAB3Nza ci@runner"
                .into(),
        ),
        password: Some(Secret::new("a-long-root-password")),
        timezone: Some("Europe/Berlin".into()),
    }
}

fn minimal_ct() -> CreateCt {
    CreateCt {
        vmid: 999_999_999,
        ostemplate: "local:vztmpl/debian-13-standard_13.1-1_amd64.tar.zst".into(),
        hostname: "ct".into(),
        cores: 1,
        memory: 16,
        swap: 0,
        rootfs: RootFs {
            storage: "tank".into(),
            size_gib: 1,
        },
        net0: dhcp_net(),
        features: Features { nesting: false },
        tags: vec![],
        description: None,
        onboot: false,
        start: false,
        nameserver: vec![],
        searchdomain: None,
        ssh_public_keys: None,
        password: None,
        timezone: Some("host".into()),
    }
}

fn full_update() -> CtConfigUpdate {
    let mut u = CtConfigUpdate {
        digest: Some("6b0f3d1e0c8e2b6b1c5c3f0f3a0d8b7b0b6d8a1c".into()),
        hostname: Some("vikunja-green".into()),
        cores: Some(4),
        memory: Some(2048),
        swap: Some(0),
        onboot: Some(false),
        tags: Some(vec!["launch".into(), "slot-green".into()]),
        description: Some("updated\nby Launch".into()),
        features: Some(Features { nesting: true }),
        nameserver: Some(vec!["9.9.9.9".into()]),
        searchdomain: Some("lan".into()),
        timezone: Some("UTC".into()),
        delete: vec!["net2".into(), "mp0".into()],
        ..Default::default()
    };
    u.net.insert(0, static_net());
    u.net.insert(1, dhcp_net());
    u
}

fn upid() -> Upid {
    "UPID:pve:000A1B2C:0016E3F4:6650A1B2:vzcreate:101:launch@pve!ci:"
        .parse()
        .unwrap()
}

fn cases() -> Vec<(&'static str, ApiRequest)> {
    let upid9: Upid = "UPID:pve-2:0000C3A5:1A2B3C4D5:66A1B2C3:vzdump::root@pam:"
        .parse()
        .unwrap();
    let all_content = [
        ContentType::Images,
        ContentType::Rootdir,
        ContentType::Vztmpl,
        ContentType::Iso,
        ContentType::Backup,
        ContentType::Snippets,
    ];
    let mut out = vec![
        case!(access_ticket("root@pam", &Secret::new("a-password"))),
        case!(access_ticket(
            "launch@pve",
            &Secret::new("PVE:launch@pve:66A1B2C3::c2ln/+==")
        )),
        case!(access_permissions(None)),
        case!(access_permissions(Some("/sdn/zones/localnetwork/vmbr0/20"))),
        case!(version()),
        case!(cluster_nextid(None)),
        case!(cluster_nextid(Some(105))),
        case!(cluster_resources(None)),
        case!(nodes()),
        case!(cluster_status()),
        case!(node_bridges("pve")),
        case!(sdn_vnet("vnet1")),
        case!(node_status("pve")),
        case!(storage_list("pve", &[])),
        case!(storage_list(
            "pve",
            &[ContentType::Rootdir, ContentType::Images]
        )),
        case!(storage_list("node-2", &all_content)),
        case!(aplinfo_list("pve")),
        case!(aplinfo_download(
            "pve",
            "local",
            "debian-12-standard_12.7-1_amd64.tar.zst"
        )),
        case!(storage_content("pve", "local", None)),
        case!(lxc_create("pve", &full_ct())),
        case!(lxc_create("pve", &minimal_ct())),
        case!(lxc_list("pve")),
        case!(lxc_config_get("pve", 101)),
        case!(lxc_config_put("pve", 101, &full_update())),
        case!(lxc_config_put(
            "pve",
            101,
            &CtConfigUpdate {
                delete: vec!["net1".into()],
                ..Default::default()
            }
        )),
        case!(lxc_config_put("pve", 101, &CtConfigUpdate::default())),
        case!(lxc_status_current("pve", 101)),
        case!(lxc_start("pve", 101)),
        case!(lxc_shutdown("pve", 101, None, false)),
        case!(lxc_shutdown("pve", 101, Some(0), true)),
        case!(lxc_shutdown("pve", 101, Some(300), false)),
        case!(lxc_stop("pve", 101)),
        case!(lxc_delete("pve", 101, false, false)),
        case!(lxc_delete("pve", 101, true, true)),
        case!(snapshot_list("pve", 101)),
        case!(snapshot_create("pve", 101, "pre_update_20240601", None)),
        case!(snapshot_create(
            "pve",
            101,
            "launch-pre-update",
            Some("before update to v0.24.1\nby Launch")
        )),
        case!(snapshot_rollback("pve", 101, "pre_update_20240601", false)),
        case!(snapshot_rollback("pve", 101, "pre_update_20240601", true)),
        case!(lxc_resize("pve", 101, 8)),
        case!(snapshot_delete("pve", 101, "pre_update_20240601", false)),
        case!(snapshot_delete("pve", 101, "pre_update_20240601", true)),
        case!(lxc_interfaces("pve", 101)),
        case!(task_status(&upid())),
        case!(task_status(&upid9)),
        case!(task_log(&upid(), 0, 50)),
        case!(task_log(&upid9, 1234, 500)),
    ];
    for kind in [
        ResourceType::Vm,
        ResourceType::Storage,
        ResourceType::Node,
        ResourceType::Sdn,
    ] {
        out.push(case!(cluster_resources(Some(kind))));
    }
    for c in all_content {
        out.push(case!(storage_content("pve", "local", Some(c))));
    }
    for mode in [BackupMode::Snapshot, BackupMode::Suspend, BackupMode::Stop] {
        for compress in [
            Compress::None,
            Compress::Gzip,
            Compress::Lzo,
            Compress::Zstd,
        ] {
            let v = Vzdump {
                vmid: 101,
                storage: "backup-nfs".into(),
                mode,
                compress,
                notes_template: Some("{{guestname}} before update by Launch".into()),
                protected: mode == BackupMode::Stop,
            };
            out.push(case!(vzdump("pve", &v)));
        }
    }
    out.push(case!(vzdump(
        "pve",
        &Vzdump {
            vmid: 101,
            storage: "local".into(),
            mode: BackupMode::Snapshot,
            compress: Compress::Zstd,
            notes_template: None,
            protected: false,
        }
    )));
    out
}

fn load(v: PveMajor) -> Schema {
    Schema::load_shared(v)
        .unwrap_or_else(|e| panic!("cannot load the {v:?} schema from ../shared: {e}"))
}

fn check_all(v: PveMajor) {
    let schema = load(v);
    let mut failures = Vec::new();
    let cases = cases();
    for (name, req) in &cases {
        if let Err(rej) = schema.validate(req.method.as_str(), &req.path, &req.params) {
            failures.push(format!(
                "{name}: {} {} -> {} {:?}",
                req.method,
                req.path,
                rej.status(),
                rej.body()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{v:?} schema rejects:\n{}",
        failures.join("\n")
    );
    eprintln!("{v:?}: {} requests valid", cases.len());
}

#[test]
fn all_requests_match_the_pve8_schema() {
    check_all(PveMajor::V8);
}

#[test]
fn all_requests_match_the_pve9_schema() {
    check_all(PveMajor::V9);
}

#[test]
fn every_builder_is_covered() {
    let covered: BTreeSet<&str> = cases().iter().map(|(n, _)| *n).collect();
    let declared: BTreeSet<&str> = BUILDERS.iter().copied().collect();
    assert_eq!(
        declared.len(),
        BUILDERS.len(),
        "BUILDERS lists a name twice"
    );
    let missing: Vec<_> = declared.difference(&covered).collect();
    let undeclared: Vec<_> = covered.difference(&declared).collect();
    assert!(
        missing.is_empty(),
        "builders without a schema case: {missing:?}"
    );
    assert!(
        undeclared.is_empty(),
        "builders missing from requests::BUILDERS: {undeclared:?}"
    );
    eprintln!(
        "covered builders ({}): {}",
        covered.len(),
        covered.iter().copied().collect::<Vec<_>>().join(", ")
    );
}

#[test]
fn the_inputs_used_here_pass_the_clients_own_checks() {
    // Otherwise the schema cases could test requests the client would never send.
    full_ct().validate().unwrap();
    minimal_ct().validate().unwrap();
    full_update().validate().unwrap();
}

#[test]
fn the_schema_check_does_reject_wrong_requests() {
    // Guards against a validator that accepts everything, which would make the tests above pass
    // vacuously.
    for v in [PveMajor::V8, PveMajor::V9] {
        let schema = load(v);
        let mut req = requests::lxc_create("pve", &full_ct());
        for p in req.params.iter_mut().filter(|(k, _)| k == "unprivileged") {
            p.1 = "true".into();
        }
        let rej = schema.validate("POST", &req.path, &req.params).unwrap_err();
        assert_eq!(rej.status(), 400, "{v:?}: {rej:?}");

        let mut req = requests::lxc_create("pve", &minimal_ct());
        req.params.push(("net0x".into(), "name=eth0".into()));
        assert!(
            schema.validate("POST", &req.path, &req.params).is_err(),
            "{v:?}: unknown parameter accepted"
        );

        let mut net = static_net();
        net.tag = Some(5000);
        let mut ct = full_ct();
        ct.net0 = net;
        let req = requests::lxc_create("pve", &ct);
        assert!(
            schema.validate("POST", &req.path, &req.params).is_err(),
            "{v:?}: VLAN tag 5000 accepted"
        );

        let req = requests::version();
        assert_eq!(
            schema
                .validate("PUT", &req.path, &req.params)
                .unwrap_err()
                .status(),
            501
        );
    }
}
