//! One wrong request per rule, each asserting PVE's exact message and the 400/501 shape,
//! against both the PVE 8.4 and the 9.1 schema.

mod common;

use common::{create_ct, errors, form, only_error, schema, BOTH};
use pve_schema::{PveMajor, Rejection};
use serde_json::json;

const LXC: &str = "/nodes/pve/lxc";

fn create_rejects(v: PveMajor, extra: &[(&'static str, &'static str)], key: &str, msg: &str) {
    only_error(v, "POST", LXC, &create_ct(extra), key, msg);
}

fn not_implemented(v: PveMajor, method: &str, path: &str) -> Rejection {
    match schema(v).validate(method, path, &[]) {
        Ok(valid) => panic!("{v:?} {method} {path} should be 501, passed as {valid:?}"),
        Err(rej) => {
            assert_eq!(rej.status(), 501, "{rej}");
            rej
        }
    }
}

#[test]
fn unknown_path_is_501_with_pve_message_and_body() {
    for v in BOTH {
        let rej = not_implemented(v, "GET", "/foo");
        assert_eq!(
            rej,
            Rejection::NotImplemented {
                method: "GET".into(),
                path: "/foo".into()
            }
        );
        assert_eq!(rej.status_text(), "Method 'GET /foo' not implemented");
        assert_eq!(
            rej.body(),
            json!({"data": null, "message": "Method 'GET /foo' not implemented"})
        );
        not_implemented(v, "GET", "/nodes/pve/lxc/100/config/extra");
        not_implemented(v, "GET", "/nodes/pve/lxcs");
        // A `{param}` segment is \S+: whitespace (here percent-encoded) does not route.
        let rej = not_implemented(v, "GET", "/nodes/pve/lxc/1%2000/config");
        assert_eq!(
            rej.status_text(),
            "Method 'GET /nodes/pve/lxc/1 00/config' not implemented"
        );
    }
}

#[test]
fn wrong_method_is_501() {
    for v in BOTH {
        let rej = not_implemented(v, "DELETE", "/version");
        assert_eq!(
            rej.status_text(),
            "Method 'DELETE /version' not implemented"
        );
        not_implemented(v, "PUT", "/cluster/nextid");
        not_implemented(v, "POST", "/nodes/pve/lxc/100/config");
        // Methods are case-sensitive on the wire.
        not_implemented(v, "get", "/version");
    }
}

#[test]
fn unknown_parameter() {
    for v in BOTH {
        create_rejects(
            v,
            &[("colour", "blue")],
            "colour",
            "property is not defined in schema and the schema does not allow additional properties",
        );
        only_error(
            v,
            "GET",
            "/version",
            &[("verbose", "1")],
            "verbose",
            "property is not defined in schema and the schema does not allow additional properties",
        );
    }
}

#[test]
fn missing_required_parameters_are_all_reported() {
    for v in BOTH {
        let req: Vec<_> = create_ct(&[])
            .into_iter()
            .filter(|(k, _)| *k != "ostemplate" && *k != "vmid")
            .collect();
        let errs = errors(v, "POST", LXC, &req);
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!(
            errs["ostemplate"],
            "property is missing and it is not optional"
        );
        assert_eq!(errs["vmid"], "property is missing and it is not optional");
        only_error(
            v,
            "POST",
            "/nodes/pve/lxc/100/snapshot",
            &[],
            "snapname",
            "property is missing and it is not optional",
        );
        // An empty form value is undef, so it does not satisfy a required parameter.
        only_error(
            v,
            "POST",
            "/nodes/pve/lxc/100/snapshot",
            &[("snapname", "")],
            "snapname",
            "property is missing and it is not optional",
        );
    }
}

#[test]
fn integer_type() {
    for v in BOTH {
        create_rejects(
            v,
            &[("cores", "two")],
            "cores",
            "type check ('integer') failed - got 'two'",
        );
        create_rejects(
            v,
            &[("memory", "1.5")],
            "memory",
            "type check ('integer') failed - got '1.5'",
        );
        create_rejects(
            v,
            &[("cpulimit", "lots")],
            "cpulimit",
            "type check ('number') failed - got 'lots'",
        );
    }
}

#[test]
fn boolean_true_in_a_form_is_rejected() {
    for v in BOTH {
        create_rejects(
            v,
            &[("onboot", "true")],
            "onboot",
            "type check ('boolean') failed - got 'true'",
        );
        create_rejects(
            v,
            &[("unprivileged", "yes")],
            "unprivileged",
            "type check ('boolean') failed - got 'yes'",
        );
    }
}

#[test]
fn enumeration() {
    for v in BOTH {
        create_rejects(
            v,
            &[("cmode", "serial")],
            "cmode",
            "value 'serial' does not have a value in the enumeration 'shell, console, tty'",
        );
        let errs = errors(v, "GET", "/cluster/resources", &[("type", "qemu")]);
        assert!(
            errs["type"].starts_with(
                "value 'qemu' does not have a value in the enumeration 'vm, storage, node"
            ),
            "{errs:?}"
        );
    }
}

#[test]
fn minimum_and_maximum() {
    for v in BOTH {
        create_rejects(
            v,
            &[("memory", "8")],
            "memory",
            "value must have a minimum value of 16",
        );
        create_rejects(
            v,
            &[("swap", "-1")],
            "swap",
            "value must have a minimum value of 0",
        );
        create_rejects(
            v,
            &[("cores", "9000")],
            "cores",
            "value must have a maximum value of 8192",
        );
        create_rejects(
            v,
            &[("tty", "7")],
            "tty",
            "value must have a maximum value of 6",
        );
        only_error(
            v,
            "GET",
            "/nodes/pve/lxc/1000000000/config",
            &[],
            "vmid",
            "invalid format - value does not look like a valid VM ID\n",
        );
    }
}

#[test]
fn max_and_min_length() {
    let long = "x".repeat(8193);
    let long: &'static str = Box::leak(long.into_boxed_str());
    for v in BOTH {
        create_rejects(
            v,
            &[("description", long)],
            "description",
            "value may only be 8192 characters long",
        );
        // Characters, not bytes: 8192 two-byte characters still fit.
        let umlauts: &'static str = Box::leak("ä".repeat(8192).into_boxed_str());
        common::ok(v, "POST", LXC, &create_ct(&[("description", umlauts)]));
        create_rejects(
            v,
            &[("password", "abcd")],
            "password",
            "value must be at least 5 characters long",
        );
        only_error(
            v,
            "PUT",
            "/nodes/pve/lxc/100/config",
            &[("digest", Box::leak("f".repeat(41).into_boxed_str()))],
            "digest",
            // The container config keeps the SHA-1 length; the generic option allows 64.
            "value may only be 40 characters long",
        );
    }
}

#[test]
fn pattern() {
    for v in BOTH {
        only_error(
            v,
            "PUT",
            "/nodes/pve/lxc/100/resize",
            &[("disk", "rootfs"), ("size", "8 gigs")],
            "size",
            "value does not match the regex pattern",
        );
        common::ok(
            v,
            "PUT",
            "/nodes/pve/lxc/100/resize",
            &[("disk", "rootfs"), ("size", "+2G")],
        );
        // A pattern on a path parameter (token id on the token endpoint).
        only_error(
            v,
            "POST",
            "/access/users/launch@pve/token/1bad",
            &[],
            "tokenid",
            "value does not match the regex pattern",
        );
        common::ok(
            v,
            "POST",
            "/access/users/launch@pve/token/launch",
            &[("privsep", "1")],
        );
        // A pattern inside a property string.
        create_rejects(
            v,
            &[("net0", "name=eth0,bridge=vmbr0!")],
            "net0",
            "invalid format - format error\nnet0.bridge: value does not match the regex pattern\n",
        );
    }
}

#[test]
fn requires_another_parameter() {
    for v in BOTH {
        create_rejects(
            v,
            &[("unique", "1")],
            "restore",
            "missing property - 'unique' requires this property",
        );
        common::ok(
            v,
            "POST",
            LXC,
            &create_ct(&[("unique", "1"), ("restore", "1")]),
        );
    }
}

#[test]
fn named_formats_on_container_create() {
    for v in BOTH {
        create_rejects(
            v,
            &[("vmid", "99")],
            "vmid",
            "invalid format - value does not look like a valid VM ID\n",
        );
        create_rejects(
            v,
            &[("hostname", "bad_host")],
            "hostname",
            "invalid format - value does not look like a valid DNS name\n",
        );
        create_rejects(
            v,
            &[("storage", "9local")],
            "storage",
            "invalid format - storage ID '9local' contains illegal characters\n",
        );
        create_rejects(
            v,
            &[("tags", "launch;no tags!")],
            "tags",
            "invalid format - invalid characters in tag\n",
        );
        create_rejects(
            v,
            &[("timezone", "Mars/Olympus_Mons")],
            "timezone",
            "invalid format - invalid time zone 'Mars/Olympus_Mons'\n",
        );
        create_rejects(
            v,
            &[("nameserver", "1.1.1.1 dns.example")],
            "nameserver",
            "invalid format - value does not look like a valid IP address\n",
        );
        create_rejects(
            v,
            &[("searchdomain", "lan bad_domain")],
            "searchdomain",
            "invalid format - value does not look like a valid DNS name\n",
        );
        create_rejects(
            v,
            &[("hookscript", "hook.pl")],
            "hookscript",
            "invalid format - unable to parse volume ID 'hook.pl'\n",
        );
        create_rejects(
            v,
            &[("pool", "apps!")],
            "pool",
            "invalid format - pool name 'apps!' contains invalid characters\n",
        );
    }
}

#[test]
fn named_formats_inside_property_strings() {
    for v in BOTH {
        let prefix = "invalid format - format error\n";
        create_rejects(
            v,
            &[("net0", "name=eth0,ip=10.0.0.1")],
            "net0",
            &format!("{prefix}net0.ip: invalid format - value does not look like a valid ipv4 network configuration\n\n"),
        );
        create_rejects(
            v,
            &[("net0", "name=eth0,ip6=fe80::1")],
            "net0",
            &format!("{prefix}net0.ip6: invalid format - value does not look like a valid ipv6 network configuration\n\n"),
        );
        create_rejects(
            v,
            &[("net0", "name=eth0,gw=10.0.0.256")],
            "net0",
            &format!("{prefix}net0.gw: invalid format - value does not look like a valid IPv4 address\n\n"),
        );
        create_rejects(
            v,
            &[("net0", "name=eth0,gw6=fe80::g")],
            "net0",
            &format!("{prefix}net0.gw6: invalid format - value does not look like a valid IPv6 address\n\n"),
        );
        create_rejects(
            v,
            &[("net0", "name=eth0,hwaddr=01:00:5E:00:00:01")],
            "net0",
            &format!("{prefix}net0.hwaddr: invalid format - value does not look like a valid unicast MAC address\n\n"),
        );
        create_rejects(
            v,
            &[("rootfs", "local-lvm:8,size=8X")],
            "rootfs",
            &format!("{prefix}rootfs.size: invalid format - value does not look like a valid disk size: 8X\n\n"),
        );
        create_rejects(
            v,
            &[("mp0", "local-lvm:4,mp=/srv/../etc")],
            "mp0",
            &format!("{prefix}mp0.mp: invalid format - /srv/../etc contains illegal character sequences\n\n"),
        );
        create_rejects(
            v,
            &[("unused0", "notavolume")],
            "unused0",
            &format!("{prefix}unused0.volume: invalid format - unable to parse volume ID 'notavolume'\n\n"),
        );
    }
}

#[test]
fn named_formats_on_other_endpoints() {
    for v in BOTH {
        only_error(
            v,
            "GET",
            "/nodes/pve/storage",
            &[("content", "rootdir,bogus")],
            "content",
            "invalid format - invalid content type 'bogus'\n",
        );
        only_error(
            v,
            "GET",
            "/nodes/pve/storage/local/content",
            &[("content", "templates")],
            "content",
            "invalid format - invalid content type 'templates'\n",
        );
        only_error(
            v,
            "POST",
            "/nodes/pve/vzdump",
            &[("vmid", "123,42")],
            "vmid",
            "invalid format - value does not look like a valid VM ID\n",
        );
        only_error(
            v,
            "POST",
            "/nodes/pve/vzdump",
            &[
                ("vmid", "123"),
                ("mailto", "ops@example.com not an@address@"),
            ],
            "mailto",
            "invalid format - value does not look like a valid email address or user name\n",
        );
        only_error(
            v,
            "POST",
            "/nodes/pve/lxc/123/snapshot",
            &[("snapname", "pre update")],
            "snapname",
            "invalid format - invalid configuration ID 'pre update'\n",
        );
        only_error(
            v,
            "PUT",
            "/nodes/pve/lxc/123/config",
            &[("delete", "mp0,9lives")],
            "delete",
            "invalid format - invalid configuration ID '9lives'\n",
        );
        only_error(
            v,
            "POST",
            "/nodes/pve/aplinfo",
            &[
                ("storage", "-local"),
                ("template", "debian-12-standard_12.7-1_amd64.tar.zst"),
            ],
            "storage",
            "invalid format - storage ID '-local' contains illegal characters\n",
        );
        only_error(
            v,
            "POST",
            "/access/users",
            &[("userid", "launch")],
            "userid",
            "invalid format - value 'launch' does not look like a valid user name\n",
        );
        only_error(
            v,
            "POST",
            "/nodes/pve/network",
            &[
                ("iface", "vmbr9"),
                ("type", "bridge"),
                ("cidr", "10.9.0.1/33"),
            ],
            "cidr",
            "invalid format - value does not look like a valid IPv4 CIDR network\n",
        );
    }
}

#[test]
fn indexed_parameters_out_of_range() {
    for v in BOTH {
        let unknown =
            "property is not defined in schema and the schema does not allow additional properties";
        create_rejects(v, &[("net32", "name=eth32,bridge=vmbr0")], "net32", unknown);
        create_rejects(v, &[("net01", "name=eth1,bridge=vmbr0")], "net01", unknown);
        create_rejects(v, &[("mp256", "local-lvm:1,mp=/x")], "mp256", unknown);
        create_rejects(v, &[("net[n]", "name=eth0")], "net[n]", unknown);
        common::ok(
            v,
            "POST",
            LXC,
            &create_ct(&[
                ("net31", "name=eth31,bridge=vmbr0"),
                ("unused255", "local-lvm:vm-123-disk-9"),
            ]),
        );
    }
}

#[test]
fn property_string_key_rules() {
    for v in BOTH {
        create_rejects(
            v,
            &[("net0", "name=eth0,bridge=vmbr0,foo=1")],
            "net0",
            "invalid format - invalid key in comma-separated list property: foo\n",
        );
        create_rejects(
            v,
            &[("net0", "bridge=vmbr0,ip=dhcp")],
            "net0",
            "invalid format - format error\nnet0.name: property is missing and it is not optional\n",
        );
        create_rejects(
            v,
            &[("net0", "name=eth0,name=eth1")],
            "net0",
            "invalid format - duplicate key in comma-separated list property: name\n",
        );
        // A second bare value for the default key (volume).
        create_rejects(
            v,
            &[("rootfs", "local-lvm:8,local-lvm:9")],
            "rootfs",
            "invalid format - duplicate key in comma-separated list property: volume\n",
        );
        create_rejects(
            v,
            &[("rootfs", "volume=local-lvm:8,local-lvm:9")],
            "rootfs",
            "invalid format - duplicate key in comma-separated list property: volume\n",
        );
        // A bare value where no default key exists.
        create_rejects(
            v,
            &[("features", "nesting")],
            "features",
            "invalid format - value without key, but schema does not define a default key\n",
        );
        create_rejects(
            v,
            &[("net0", "name=eth0,bridge=")],
            "net0",
            "invalid format - missing key in comma-separated list property\n",
        );
        create_rejects(
            v,
            &[("mp0", "mp=/srv")],
            "mp0",
            "invalid format - format error\nmp0.volume: property is missing and it is not optional\n",
        );
    }
}

#[test]
fn property_string_value_rules() {
    for v in BOTH {
        let prefix = "invalid format - format error\n";
        create_rejects(
            v,
            &[("features", "nesting=maybe")],
            "features",
            &format!("{prefix}features.nesting: type check ('boolean') failed - got 'maybe'\n"),
        );
        create_rejects(
            v,
            &[("net0", "name=eth0,type=macvlan")],
            "net0",
            &format!("{prefix}net0.type: value 'macvlan' does not have a value in the enumeration 'veth'\n"),
        );
        create_rejects(
            v,
            &[("net0", "name=eth0,tag=5000")],
            "net0",
            &format!("{prefix}net0.tag: value must have a maximum value of 4094\n"),
        );
        create_rejects(
            v,
            &[("net0", "name=eth0,mtu=big")],
            "net0",
            &format!("{prefix}net0.mtu: type check ('integer') failed - got 'big'\n"),
        );
        // Several bad sub-keys: all reported, one line each, sorted.
        create_rejects(
            v,
            &[("net0", "name=eth0,tag=0,ip=bogus,firewall=2")],
            "net0",
            &format!(
                "{prefix}net0.firewall: type check ('boolean') failed - got '2'\n\
                 net0.ip: invalid format - value does not look like a valid ipv4 network configuration\n\n\
                 net0.tag: value must have a minimum value of 1\n"
            ),
        );
    }
}

#[test]
fn path_parameters_are_validated() {
    for v in BOTH {
        only_error(
            v,
            "GET",
            "/nodes/pve/lxc/abc/config",
            &[],
            "vmid",
            "type check ('integer') failed - got 'abc'",
        );
        only_error(
            v,
            "GET",
            "/nodes/pve/lxc/99/config",
            &[],
            "vmid",
            "invalid format - value does not look like a valid VM ID\n",
        );
        only_error(
            v,
            "GET",
            "/nodes/-pve/status",
            &[],
            "node",
            "invalid format - value does not look like a valid node name\n",
        );
    }
}

#[test]
fn body_value_conflicting_with_the_uri() {
    for v in BOTH {
        only_error(
            v,
            "POST",
            LXC,
            &create_ct(&[("node", "other")]),
            "node",
            "duplicate parameter (already defined in URI) with conflicting values!",
        );
        // The conflict aborts before schema checks, so other errors are not reported.
        only_error(
            v,
            "POST",
            "/nodes/pve/lxc/123/status/start",
            &[("vmid", "124"), ("bogus", "1")],
            "vmid",
            "duplicate parameter (already defined in URI) with conflicting values!",
        );
    }
}

#[test]
fn all_errors_are_collected_in_one_response() {
    for v in BOTH {
        let req = create_ct(&[
            ("cores", "zero"),
            ("onboot", "true"),
            ("memory", "1"),
            ("net32", "name=x"),
            ("net0", "name=eth0,ip=nope"),
            ("hostname", "-bad-"),
        ]);
        let errs = errors(v, "POST", LXC, &req);
        let keys: Vec<&str> = errs.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            vec!["cores", "hostname", "memory", "net0", "net32", "onboot"],
            "{errs:?}"
        );
    }
}

#[test]
fn json_bodies_follow_perl_type_rules() {
    for v in BOTH {
        let check = |body: serde_json::Value, key: &str, msg: &str| {
            let mut full = serde_json::Map::new();
            full.insert(
                "ostemplate".into(),
                json!("local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst"),
            );
            full.insert("vmid".into(), json!(123));
            full.extend(body.as_object().cloned().unwrap_or_default());
            match schema(v).validate_json("POST", LXC, &full) {
                Ok(valid) => panic!("{v:?} {body} should fail, passed as {valid:?}"),
                Err(Rejection::Parameters { errors }) => {
                    assert_eq!(
                        errors.get(key).map(String::as_str),
                        Some(msg),
                        "{v:?} {body}: {errors:?}"
                    );
                    assert_eq!(errors.len(), 1, "{errors:?}");
                }
                Err(other) => panic!("{other}"),
            }
        };
        check(
            json!({"onboot": "true"}),
            "onboot",
            "type check ('boolean') failed - got 'true'",
        );
        check(
            json!({"cores": true}),
            "cores",
            "type check ('integer') failed - got JSON::PP::Boolean",
        );
        check(
            json!({"cores": 1.5}),
            "cores",
            "type check ('integer') failed - got '1.5'",
        );
        check(
            json!({"hostname": ["a", "b"]}),
            "hostname",
            "type check ('string') failed - got ARRAY",
        );
        check(
            json!({"hostname": {"a": 1}}),
            "hostname",
            "type check ('string') failed - got HASH",
        );
        check(
            json!({"cores": 9000}),
            "cores",
            "value must have a maximum value of 8192",
        );
        check(
            json!({"tags": ["launch", "bad!"]}),
            "tags",
            "invalid format - invalid characters in tag\n",
        );
        // The array is joined with ',' and split on whitespace too, so "two tags" is two valid tags.
        let mut spaced = serde_json::Map::new();
        spaced.insert("ostemplate".into(), json!("local:vztmpl/x.tar.zst"));
        spaced.insert("vmid".into(), json!(123));
        spaced.insert("tags".into(), json!(["launch", "two tags"]));
        assert!(schema(v).validate_json("POST", LXC, &spaced).is_ok());
        check(
            json!({"vmid": null}),
            "vmid",
            "property is missing and it is not optional",
        );
        // A JSON number that equals the URI value is not a conflict.
        let mut same = serde_json::Map::new();
        same.insert("vmid".into(), json!(123));
        assert!(schema(v)
            .validate_json("POST", "/nodes/pve/lxc/123/status/start", &same)
            .is_ok());
    }
}

#[test]
fn repeated_form_keys_are_joined_like_pve() {
    for v in BOTH {
        // decode_urlencoded joins repeated keys with NUL; a -list format splits them again.
        let pairs = form(&[("content", "rootdir"), ("content", "images")]);
        assert!(schema(v)
            .validate("GET", "/nodes/pve/storage", &pairs)
            .is_ok());
        // A plain string parameter gets the NUL-joined value, which its checks then see.
        let pairs = form(&[
            ("vmid", "123"),
            ("ostemplate", "a"),
            ("ostemplate", "b"),
            ("cores", "1"),
            ("cores", "2"),
        ]);
        match schema(v).validate("POST", LXC, &pairs) {
            Err(Rejection::Parameters { errors }) => {
                assert_eq!(
                    errors.get("cores").map(String::as_str),
                    Some("type check ('integer') failed - got '1\u{0}2'")
                );
                assert!(!errors.contains_key("ostemplate"), "{errors:?}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn query_string_values_override_the_body() {
    for v in BOTH {
        let allowed = enum_of(v, "GET", "/cluster/resources", "type");
        assert!(allowed.starts_with("vm, storage, node"), "{allowed}");
        only_error(
            v,
            "GET",
            "/cluster/resources?type=qemu+vm",
            &[("type", "vm")],
            "type",
            &format!("value 'qemu vm' does not have a value in the enumeration '{allowed}'"),
        );
        assert!(schema(v)
            .validate(
                "GET",
                "/cluster/resources?type=vm",
                &form(&[("type", "bogus")])
            )
            .is_ok());
        only_error(
            v,
            "GET",
            "/cluster/nextid?vmid=abc",
            &[],
            "vmid",
            "type check ('integer') failed - got 'abc'",
        );
    }
}

fn enum_of(v: PveMajor, method: &str, template: &str, param: &str) -> String {
    let ep = schema(v)
        .endpoint(method, template)
        .unwrap_or_else(|| panic!("{method} {template}"));
    let values = ep
        .parameter(param)
        .and_then(|p| p["enum"].as_array().cloned())
        .unwrap_or_default();
    values
        .iter()
        .filter_map(|e| e.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn rejection_display_is_readable() {
    let rej = schema(PveMajor::V9).validate("POST", LXC, &form(&[("vmid", "1")]));
    let text = match rej {
        Err(e) => e.to_string(),
        Ok(v) => panic!("{v:?}"),
    };
    assert!(
        text.starts_with("400 Parameter verification failed.\n"),
        "{text}"
    );
    assert!(
        text.contains("ostemplate: property is missing and it is not optional"),
        "{text}"
    );
    assert!(
        text.contains("vmid: invalid format - value does not look like a valid VM ID"),
        "{text}"
    );
}
