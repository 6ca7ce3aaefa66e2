//! The machine a run was measured on (CPU model from `/proc/cpuinfo`, kernel from `uname`,
//! clock source, load) and where the processes ran (affinity masks from
//! `sched_getaffinity`, CPUs from `sched_getcpu`).

use crate::interleave::Results;
use crate::process::{cpu_list, Placement};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// The machine a run was measured on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// `model name` of the first CPU in `/proc/cpuinfo`.
    pub cpu_model: String,
    /// CPUs this process may use.
    pub cpus: usize,
    /// `sysname release machine` from `uname`.
    pub kernel: String,
    /// `virtual machine (KVM)` and the like, from the `hypervisor` CPU flag and lscpu-like
    /// hints; `None` on bare metal.
    pub virtualization: Option<String>,
    /// The kernel's clock source (`tsc`, `kvm-clock`, …): what a clock reading costs.
    pub clocksource: Option<String>,
    /// `/proc/loadavg` at detection time.
    pub load: Option<String>,
}

impl Machine {
    /// Looks at this machine.
    pub fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let field = |name: &str| {
            cpuinfo.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == name).then(|| v.trim().to_owned())
            })
        };
        let cpu_model = field("model name")
            .or_else(|| field("Processor"))
            .unwrap_or_else(|| "unknown CPU".to_owned());
        let flags = field("flags").unwrap_or_default();
        let virtualization = flags
            .split_whitespace()
            .any(|f| f == "hypervisor")
            .then(|| {
                let vendor = std::fs::read_to_string("/sys/class/dmi/id/sys_vendor")
                    .ok()
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty());
                match vendor {
                    Some(v) => format!("virtual machine ({v})"),
                    None => "virtual machine".to_owned(),
                }
            });
        let uname = rustix::system::uname();
        let kernel = format!(
            "{} {} {}",
            uname.sysname().to_string_lossy(),
            uname.release().to_string_lossy(),
            uname.machine().to_string_lossy()
        );
        let read = |path: &str| {
            std::fs::read_to_string(path)
                .ok()
                .map(|s| s.trim().to_owned())
        };
        Machine {
            cpu_model,
            cpus: crate::process::allowed_cpus().len(),
            kernel,
            virtualization,
            clocksource: read("/sys/devices/system/clocksource/clocksource0/current_clocksource"),
            load: read("/proc/loadavg"),
        }
    }
}

/// Where the processes of all batches were allowed to run, and ran.
fn placement_summary(results: &Results) -> Vec<String> {
    let all = results
        .latency
        .iter()
        .map(|b| &b.placements)
        .chain(results.paced.iter().map(|b| &b.placements))
        .chain(results.throughput.iter().map(|b| &b.placements));
    let mut affinity: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut seen: BTreeMap<&str, BTreeSet<usize>> = BTreeMap::new();
    let (mut batches, mut shared) = (0, 0);
    for ps in all {
        batches += 1;
        for p in ps {
            affinity
                .entry(p.role.as_str())
                .or_default()
                .insert(cpu_list(&p.affinity));
            seen.entry(p.role.as_str()).or_default().insert(p.cpu);
        }
        let parent: Vec<&Placement> = ps.iter().filter(|p| p.role == "parent").collect();
        if ps
            .iter()
            .filter(|p| p.role == "child")
            .any(|c| parent.iter().any(|p| p.cpu == c.cpu))
        {
            shared += 1;
        }
    }
    let mut lines = Vec::new();
    for role in ["parent", "child"] {
        let (Some(a), Some(s)) = (affinity.get(role), seen.get(role)) else {
            continue;
        };
        let masks: Vec<String> = a.iter().map(|m| format!("{{{m}}}")).collect();
        let cpus: Vec<usize> = s.iter().copied().collect();
        lines.push(format!(
            "{}: affinity {}; last seen on CPU {} (sampled at the end of each batch)",
            if role == "parent" {
                "parent (measuring) process"
            } else {
                "child processes"
            },
            masks.join(" or "),
            cpu_list(&cpus)
        ));
    }
    lines.push(format!(
        "batches whose parent and a child were last seen on the same CPU: {shared} of {batches}"
    ));
    lines
}

/// The report's list of the machine and the processes' placement.
pub(super) fn section(s: &mut String, results: &Results, machine: &Machine) {
    let o = &results.options;
    let _ = writeln!(s, "- CPU: {} ({} CPUs)", machine.cpu_model, machine.cpus);
    let _ = writeln!(
        s,
        "- Kernel: {}{}",
        machine.kernel,
        machine
            .virtualization
            .as_ref()
            .map_or(String::new(), |v| format!(", {v}"))
    );
    if let Some(c) = &machine.clocksource {
        let _ = writeln!(s, "- Clock source: {c}");
    }
    if let Some(l) = &machine.load {
        let _ = writeln!(s, "- Load average at start: {l}");
    }
    let _ = writeln!(
        s,
        "- Placement: {}",
        if o.pin {
            "pinned (parent on the first allowed CPU, each child on the next)"
        } else {
            "left to the scheduler (--pin pins)"
        }
    );
    for line in placement_summary(results) {
        let _ = writeln!(s, "  - {line}");
    }
}
