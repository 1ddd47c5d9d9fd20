//! Resource limits for app instances: cgroup v2 when wharf may create
//! cgroups, else the cgroup v1 memory/cpu controllers, else rlimits.
//!
//! `detect` looks once at what this machine allows. Per instance,
//! `prepare` makes a cgroup with the limits (or none), `attach` moves the
//! spawned process into it, and `oom_kills` tells whether the kernel killed
//! something there for exceeding the memory limit.

use std::fs;
use std::path::{Path, PathBuf};

use crate::config::App;

/// How limits are enforced on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// Unified hierarchy: a directory we may create children in, with the
    /// memory and cpu controllers enabled for them.
    CgroupV2(PathBuf),
    /// Legacy hierarchies: the memory controller dir, and the cpu one if writable.
    CgroupV1 {
        memory: PathBuf,
        cpu: Option<PathBuf>,
    },
    /// Only setrlimit: memory as RLIMIT_AS, no CPU limit.
    Rlimits,
}

impl Backend {
    pub fn describe(&self) -> &'static str {
        match self {
            Backend::CgroupV2(_) => "cgroup v2 (memory.max, cpu.max)",
            Backend::CgroupV1 { cpu: Some(_), .. } => "cgroup v1 (memory, cpu)",
            Backend::CgroupV1 { cpu: None, .. } => {
                "cgroup v1 (memory only; cpu_limit not enforced)"
            }
            Backend::Rlimits => "rlimits (memory as RLIMIT_AS; cpu_limit not enforced)",
        }
    }

    /// Whether `cpu_limit` can be enforced.
    pub fn enforces_cpu(&self) -> bool {
        matches!(
            self,
            Backend::CgroupV2(_) | Backend::CgroupV1 { cpu: Some(_), .. }
        )
    }
}

/// Looks at /proc/self/cgroup and /sys/fs/cgroup once. `create` allows
/// making the directories needed (false for `wharf check`).
pub fn detect(create: bool) -> Backend {
    let Ok(membership) = fs::read_to_string("/proc/self/cgroup") else {
        return Backend::Rlimits;
    };
    if let Some(dir) = v2(&membership, create) {
        return Backend::CgroupV2(dir);
    }
    let v1_path = |controller: &str| {
        membership.lines().find_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            controllers.split(',').any(|c| c == controller).then(|| {
                Path::new("/sys/fs/cgroup")
                    .join(controller)
                    .join(path.trim_start_matches('/'))
            })
        })
    };
    let writable = |dir: &Path| {
        if !create {
            return dir.join("cgroup.procs").exists();
        }
        let probe = dir.join(format!("wharf-probe-{}", std::process::id()));
        let ok = fs::create_dir(&probe).is_ok();
        let _ = fs::remove_dir(&probe);
        ok
    };
    if let Some(memory) = v1_path("memory").filter(|d| writable(d)) {
        let cpu = v1_path("cpu").filter(|d| writable(d));
        return Backend::CgroupV1 { memory, cpu };
    }
    Backend::Rlimits
}

fn v2(membership: &str, create: bool) -> Option<PathBuf> {
    let path = membership.lines().find_map(|l| l.strip_prefix("0::"))?;
    let root = Path::new("/sys/fs/cgroup");
    let controllers = fs::read_to_string(root.join("cgroup.controllers")).ok()?;
    if !controllers.split_whitespace().any(|c| c == "memory") {
        return None;
    }
    let own = root.join(path.trim_start_matches('/'));
    let apps = own.join("wharf-apps");
    if !create {
        return fs::metadata(own.join("cgroup.subtree_control"))
            .ok()
            .map(|_| apps);
    }
    // Children get controllers only from a parent without processes of its
    // own: make `wharf-apps` and enable memory and cpu below it.
    fs::create_dir_all(&apps).ok()?;
    fs::write(own.join("cgroup.subtree_control"), "+memory +cpu").ok()?;
    fs::write(apps.join("cgroup.subtree_control"), "+memory +cpu").ok()?;
    Some(apps)
}

/// The cgroups one instance runs in.
#[derive(Debug, Default)]
pub struct Cgroups {
    dirs: Vec<PathBuf>,
    /// Where the OOM-kill counter lives.
    memory: Option<PathBuf>,
    v2: bool,
}

/// Makes the instance's cgroups and writes its limits.
pub fn prepare(backend: &Backend, app: &App, name: &str) -> std::io::Result<Cgroups> {
    let mut cgroups = Cgroups::default();
    match backend {
        Backend::Rlimits => {}
        Backend::CgroupV2(parent) => {
            let dir = parent.join(name);
            fs::create_dir_all(&dir)?;
            if let Some(bytes) = app.memory_limit {
                fs::write(dir.join("memory.max"), bytes.to_string())?;
                let _ = fs::write(dir.join("memory.swap.max"), "0");
            }
            if let Some(cores) = app.cpu_limit {
                fs::write(
                    dir.join("cpu.max"),
                    format!("{} 100000", (cores * 100_000.0) as u64),
                )?;
            }
            cgroups.memory = Some(dir.clone());
            cgroups.dirs.push(dir);
            cgroups.v2 = true;
        }
        Backend::CgroupV1 { memory, cpu } => {
            if let Some(bytes) = app.memory_limit {
                let dir = memory.join(name);
                fs::create_dir_all(&dir)?;
                fs::write(dir.join("memory.limit_in_bytes"), bytes.to_string())?;
                let _ = fs::write(dir.join("memory.memsw.limit_in_bytes"), bytes.to_string());
                cgroups.memory = Some(dir.clone());
                cgroups.dirs.push(dir);
            }
            if let (Some(cores), Some(cpu)) = (app.cpu_limit, cpu) {
                let dir = cpu.join(name);
                fs::create_dir_all(&dir)?;
                fs::write(dir.join("cpu.cfs_period_us"), "100000")?;
                fs::write(
                    dir.join("cpu.cfs_quota_us"),
                    ((cores * 100_000.0) as u64).to_string(),
                )?;
                cgroups.dirs.push(dir);
            }
        }
    }
    Ok(cgroups)
}

impl Cgroups {
    /// Moves a process into every cgroup of the instance.
    pub fn attach(&self, pid: u32) -> std::io::Result<()> {
        for dir in &self.dirs {
            fs::write(dir.join("cgroup.procs"), pid.to_string())?;
        }
        Ok(())
    }

    /// How many processes the kernel killed here for the memory limit.
    pub fn oom_kills(&self) -> u64 {
        let Some(dir) = &self.memory else {
            return 0;
        };
        let (file, key) = if self.v2 {
            ("memory.events", "oom_kill")
        } else {
            ("memory.oom_control", "oom_kill")
        };
        fs::read_to_string(dir.join(file))
            .unwrap_or_default()
            .lines()
            .find_map(|line| line.strip_prefix(key)?.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Removes the (empty) cgroups.
    pub fn remove(&self) {
        for dir in &self.dirs {
            let _ = fs::remove_dir(dir);
        }
    }

    pub fn limits_memory(&self) -> bool {
        self.memory.is_some()
    }
}
