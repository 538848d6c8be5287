//! Real figures of the machine the lab runs on, for `/nodes/{node}/status`, `/nodes` and
//! `/cluster/resources`: memory, load, CPUs, uptime and kernel, read from /proc and uname.

use std::collections::HashMap;

#[derive(Debug, Clone, Default)]
pub struct Memory {
    pub total: u64,
    pub used: u64,
    pub free: u64,
    pub swap_total: u64,
    pub swap_used: u64,
}

pub fn memory() -> Memory {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kb: HashMap<&str, u64> = text
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            let n = v.split_whitespace().next()?.parse().ok()?;
            Some((k, n))
        })
        .collect();
    let get = |k: &str| kb.get(k).copied().unwrap_or(0) * 1024;
    let total = get("MemTotal");
    let avail = get("MemAvailable");
    Memory {
        total,
        used: total.saturating_sub(avail),
        free: avail,
        swap_total: get("SwapTotal"),
        swap_used: get("SwapTotal").saturating_sub(get("SwapFree")),
    }
}

pub fn loadavg() -> [String; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut it = text.split_whitespace().map(str::to_string);
    [
        it.next().unwrap_or_else(|| "0.00".into()),
        it.next().unwrap_or_else(|| "0.00".into()),
        it.next().unwrap_or_else(|| "0.00".into()),
    ]
}

pub fn uptime_s() -> u64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse::<f64>().ok())
        .map(|f| f as u64)
        .unwrap_or(0)
}

#[derive(Debug, Clone)]
pub struct CpuInfo {
    pub cpus: u64,
    pub sockets: u64,
    pub cores: u64,
    pub model: String,
    pub mhz: String,
    pub flags: String,
}

pub fn cpuinfo() -> CpuInfo {
    let text = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let mut cpus = 0;
    let mut model = String::new();
    let mut mhz = String::new();
    let mut flags = String::new();
    let mut sockets = std::collections::BTreeSet::new();
    let mut cores_per_socket = 0;
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        match k {
            "processor" => cpus += 1,
            "model name" if model.is_empty() => model = v.to_string(),
            "cpu MHz" if mhz.is_empty() => mhz = v.to_string(),
            "flags" if flags.is_empty() => flags = v.to_string(),
            "physical id" => {
                sockets.insert(v.to_string());
            }
            "cpu cores" => cores_per_socket = v.parse().unwrap_or(0),
            _ => {}
        }
    }
    let cpus = cpus.max(1);
    let sockets = (sockets.len() as u64).max(1);
    let cores = if cores_per_socket > 0 {
        cores_per_socket * sockets
    } else {
        cpus
    };
    CpuInfo {
        cpus,
        sockets,
        cores,
        model,
        mhz,
        flags,
    }
}

/// CPU busy fraction over a short sample of /proc/stat.
pub fn cpu_usage() -> f64 {
    fn sample() -> Option<(u64, u64)> {
        let text = std::fs::read_to_string("/proc/stat").ok()?;
        let line = text.lines().next()?;
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|x| x.parse().ok())
            .collect();
        let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
        Some((v.iter().sum(), idle))
    }
    let Some((t1, i1)) = sample() else {
        return 0.0;
    };
    std::thread::sleep(std::time::Duration::from_millis(100));
    let Some((t2, i2)) = sample() else {
        return 0.0;
    };
    let dt = t2.saturating_sub(t1);
    if dt == 0 {
        return 0.0;
    }
    1.0 - (i2.saturating_sub(i1) as f64 / dt as f64)
}

pub struct Uname {
    pub sysname: String,
    pub release: String,
    pub version: String,
    pub machine: String,
}

pub fn uname() -> Uname {
    // SAFETY: uname fills the zeroed struct we own; the fields are NUL-terminated C strings.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::uname(&mut u) } == 0;
    let field = |f: &[libc::c_char]| -> String {
        if !ok {
            return String::new();
        }
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Uname {
        sysname: field(&u.sysname),
        release: field(&u.release),
        version: field(&u.version),
        machine: field(&u.machine),
    }
}

pub fn boot_mode() -> &'static str {
    if std::path::Path::new("/sys/firmware/efi").exists() {
        "efi"
    } else {
        "legacy-bios"
    }
}
