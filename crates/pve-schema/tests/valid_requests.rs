//! Requests Launch really sends must pass against both the PVE 8.4 and the 9.1 schema.

mod common;

use common::{create_ct, ok, schema, BOTH};
use pve_schema::{find_schema_file, PveMajor, Schema};

#[test]
fn loads_both_schema_files_with_the_documented_endpoint_counts() {
    // Counts from shared/pve-api/SOURCE.md.
    assert_eq!(schema(PveMajor::V8).endpoint_count(), 605);
    assert_eq!(schema(PveMajor::V9).endpoint_count(), 649);
    assert_eq!(PveMajor::V8.file_name(), "apidata.json");
    assert_eq!(PveMajor::V9.file_name(), "apidata-pve9.json");
}

#[test]
fn loading_is_fast_enough_to_do_per_test_binary() {
    for v in BOTH {
        let path = find_schema_file(v).unwrap_or_else(|| panic!("{v:?} schema not found"));
        let started = std::time::Instant::now();
        let loaded = Schema::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let took = started.elapsed();
        eprintln!(
            "{v:?}: parsed {} endpoints from {} in {took:?}",
            loaded.endpoint_count(),
            path.display()
        );
        // Generous bound for an unoptimised build on a shared 2-core machine.
        assert!(
            took < std::time::Duration::from_secs(5),
            "{v:?} took {took:?}"
        );
    }
}

#[test]
fn realistic_container_create_passes() {
    for v in BOTH {
        let req = create_ct(&[]);
        let valid = ok(v, "POST", "/nodes/pve/lxc", &req);
        assert_eq!(valid.template, "/nodes/{node}/lxc");
        assert_eq!(valid.method, "POST");
        assert_eq!(
            valid.path_params.get("node").map(String::as_str),
            Some("pve")
        );
    }
}

#[test]
fn container_create_with_every_network_and_disk_option_passes() {
    for v in BOTH {
        let req = create_ct(&[
            ("net0", "name=eth0,bridge=vmbr0,firewall=1,gw=10.0.0.1,hwaddr=BC:24:11:AA:BB:CC,ip=10.0.0.5/24,ip6=auto,mtu=1500,tag=20,rate=12.5,type=veth"),
            ("net31", "name=eth31,bridge=vmbr1,ip=manual,link_down=yes"),
            ("rootfs", "volume=local-lvm:8,mountoptions=noatime;nodev,size=8G,acl=on,quota=off"),
            ("mp0", "local-lvm:4,mp=/srv/data,backup=1"),
            ("mp255", "/mnt/bind,mp=/mnt/bind"),
            ("features", "nesting=true,keyctl=1,fuse=0"),
            ("timezone", "Europe/Berlin"),
            ("ostype", "debian"),
            ("arch", "amd64"),
            ("storage", "local-lvm"),
            ("password", "s3cret-enough"),
            ("startup", "order=3,up=10"),
            ("cpulimit", "1.5"),
            ("pool", "apps"),
            ("hostname", "app.example.com"),
            ("nameserver", "fe80::1%vmbr0,1.1.1.1"),
            ("searchdomain", "lan example.com"),
        ]);
        ok(v, "POST", "/nodes/pve/lxc", &req);
    }
}

#[test]
fn reading_endpoints_pass() {
    for v in BOTH {
        ok(v, "GET", "/version", &[]);
        ok(v, "GET", "/cluster/nextid", &[]);
        ok(v, "GET", "/cluster/nextid", &[("vmid", "123")]);
        ok(v, "GET", "/cluster/resources", &[("type", "vm")]);
        ok(v, "GET", "/cluster/resources?type=vm", &[]);
        ok(v, "GET", "/nodes", &[]);
        ok(v, "GET", "/nodes/pve/status", &[]);
        ok(v, "GET", "/nodes/pve/storage", &[("content", "rootdir")]);
        ok(
            v,
            "GET",
            "/nodes/pve/storage",
            &[("content", "rootdir,images"), ("enabled", "1")],
        );
        ok(v, "GET", "/nodes/pve/aplinfo", &[]);
        ok(v, "GET", "/nodes/pve/lxc/123/config", &[]);
        ok(v, "GET", "/nodes/pve/lxc/123/status/current", &[]);
        ok(v, "GET", "/nodes/pve/lxc/123/snapshot", &[]);
        ok(v, "GET", "/nodes/pve/lxc/123/interfaces", &[]);
        ok(
            v,
            "GET",
            "/nodes/pve/storage/local/content",
            &[("content", "vztmpl")],
        );
        // A trailing slash is fine; the API root itself is not in the dump (api_dump skips '').
        ok(v, "GET", "/nodes/pve/lxc/", &[]);
    }
}

#[test]
fn task_endpoints_take_a_upid_as_one_segment() {
    let upid = "UPID:pve:000A1B2C:0016E3F4:6650A1B2:vzcreate:123:launch@pve!ci:";
    for v in BOTH {
        let valid = ok(v, "GET", &format!("/nodes/pve/tasks/{upid}/status"), &[]);
        assert_eq!(valid.template, "/nodes/{node}/tasks/{upid}/status");
        assert_eq!(
            valid.path_params.get("upid").map(String::as_str),
            Some(upid)
        );
        ok(
            v,
            "GET",
            &format!("/nodes/pve/tasks/{upid}/log"),
            &[("start", "0"), ("limit", "50")],
        );
        // Percent-encoded as a careful client sends it.
        let encoded = upid
            .replace(':', "%3A")
            .replace('@', "%40")
            .replace('!', "%21");
        let valid = ok(v, "DELETE", &format!("/nodes/pve/tasks/{encoded}"), &[]);
        assert_eq!(
            valid.path_params.get("upid").map(String::as_str),
            Some(upid)
        );
    }
}

#[test]
fn container_lifecycle_calls_pass() {
    for v in BOTH {
        ok(
            v,
            "PUT",
            "/nodes/pve/lxc/123/config",
            &[
                ("digest", "0123456789abcdef0123456789abcdef01234567"),
                ("delete", "mp0,unused0;description"),
                ("memory", "2048"),
                ("net0", "name=eth0,bridge=vmbr0,ip=dhcp"),
            ],
        );
        ok(v, "POST", "/nodes/pve/lxc/123/status/start", &[]);
        ok(
            v,
            "POST",
            "/nodes/pve/lxc/123/status/shutdown",
            &[("timeout", "60"), ("forceStop", "1")],
        );
        ok(v, "POST", "/nodes/pve/lxc/123/status/stop", &[]);
        ok(
            v,
            "POST",
            "/nodes/pve/lxc/123/snapshot",
            &[("snapname", "pre-update"), ("description", "before v0.24")],
        );
        ok(
            v,
            "POST",
            "/nodes/pve/lxc/123/snapshot/pre-update/rollback",
            &[("start", "1")],
        );
        ok(
            v,
            "DELETE",
            "/nodes/pve/lxc/123/snapshot/pre-update",
            &[("force", "0")],
        );
        ok(
            v,
            "POST",
            "/nodes/pve/vzdump",
            &[
                ("vmid", "123"),
                ("storage", "local"),
                ("mode", "snapshot"),
                ("compress", "zstd"),
                ("protected", "1"),
                ("notes-template", "{{guestname}} by Launch"),
            ],
        );
        ok(
            v,
            "POST",
            "/nodes/pve/aplinfo",
            &[
                ("storage", "local"),
                ("template", "debian-12-standard_12.7-1_amd64.tar.zst"),
            ],
        );
        ok(
            v,
            "DELETE",
            "/nodes/pve/lxc/123",
            &[("purge", "1"), ("destroy-unreferenced-disks", "1")],
        );
        let valid = ok(v, "DELETE", "/nodes/pve/lxc/123", &[("purge", "1")]);
        assert_eq!(valid.template, "/nodes/{node}/lxc/{vmid}");
        assert_eq!(
            valid.path_params.get("vmid").map(String::as_str),
            Some("123")
        );
    }
}

#[test]
fn storage_content_volume_ids_keep_their_slashes() {
    for v in BOTH {
        let vol = "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst";
        for path in [
            format!("/nodes/pve/storage/local/content/{vol}"),
            format!(
                "/nodes/pve/storage/local/content/{}",
                vol.replace('/', "%2F")
            ),
        ] {
            let valid = ok(v, "GET", &path, &[]);
            assert_eq!(
                valid.template,
                "/nodes/{node}/storage/{storage}/content/{volume}"
            );
            assert_eq!(
                valid.path_params.get("volume").map(String::as_str),
                Some(vol)
            );
        }
    }
}

#[test]
fn schema_can_be_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Schema>();
    let s = schema(PveMajor::V9);
    let req = common::form(&create_ct(&[]));
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| s.validate("POST", "/nodes/pve/lxc", &req).is_ok()))
            .collect();
        for h in handles {
            assert!(h.join().unwrap_or(false));
        }
    });
}

#[test]
fn path_params_equal_to_the_uri_are_allowed() {
    for v in BOTH {
        ok(
            v,
            "POST",
            "/nodes/pve/lxc/123/status/start",
            &[("node", "pve"), ("vmid", "123")],
        );
    }
}

#[test]
fn empty_form_values_count_as_not_sent() {
    // decode_urlencoded turns `description=` into undef, which an optional parameter ignores.
    for v in BOTH {
        ok(
            v,
            "PUT",
            "/nodes/pve/lxc/123/config",
            &[("description", ""), ("memory", "512")],
        );
    }
}

#[test]
fn json_bodies_accept_json_types() {
    for v in BOTH {
        let body = serde_json::json!({
            "ostemplate": "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
            "vmid": 123,
            "unprivileged": true,
            "start": false,
            "cores": 2,
            "memory": 1024.0,
            "cpulimit": 1.5,
            "net0": "name=eth0,bridge=vmbr0,ip=dhcp",
            "tags": ["launch", "vikunja"],
            "description": null,
        });
        let map = body.as_object().cloned().unwrap_or_default();
        let valid = schema(v).validate_json("POST", "/nodes/pve/lxc", &map);
        assert!(valid.is_ok(), "{v:?}: {valid:?}");
    }
}

#[test]
fn endpoint_metadata_is_exposed() {
    for v in BOTH {
        let s = schema(v);
        let create = s
            .endpoint("POST", "/nodes/{node}/lxc")
            .unwrap_or_else(|| panic!("{v:?}: no lxc create"));
        assert!(create.protected);
        assert!(create.allowtoken);
        assert_eq!(create.proxyto.as_deref(), Some("node"));
        assert_eq!(create.returns["type"], "string");
        assert!(
            create.permissions.get("check").is_some()
                || create.permissions.get("description").is_some()
        );
        assert!(create.parameter_names().contains(&"net[n]".to_string()));
        assert_eq!(
            create.parameter("net7").and_then(|p| p.get("optional")),
            Some(&serde_json::json!(1))
        );
        assert!(create.parameter("net32").is_none());
        let ticket = s
            .endpoint("POST", "/access/ticket")
            .unwrap_or_else(|| panic!("{v:?}: no ticket"));
        assert!(!ticket.allowtoken);
        assert!(s
            .endpoint("GET", "/nodes/{node}/lxc/{vmid}/config")
            .is_some());
        assert!(s.endpoint("PATCH", "/version").is_none());
        assert!(
            s.endpoint("GET", "/nodes/pve/lxc").is_none(),
            "templates, not concrete paths"
        );
    }
}

#[test]
fn pve9_only_parameter_is_accepted_by_9_and_rejected_by_8() {
    let req = create_ct(&[("entrypoint", "/sbin/init")]);
    ok(PveMajor::V9, "POST", "/nodes/pve/lxc", &req);
    common::only_error(
        PveMajor::V8,
        "POST",
        "/nodes/pve/lxc",
        &req,
        "entrypoint",
        "property is not defined in schema and the schema does not allow additional properties",
    );
    // 9.1 also added host-managed to the net property string.
    let req = create_ct(&[("net0", "name=eth0,bridge=vmbr0,ip=dhcp,host-managed=1")]);
    ok(PveMajor::V9, "POST", "/nodes/pve/lxc", &req);
    common::only_error(
        PveMajor::V8,
        "POST",
        "/nodes/pve/lxc",
        &req,
        "net0",
        "invalid format - invalid key in comma-separated list property: host-managed\n",
    );
}
