//! Reader for `[app.NAME]`: processes wharf supervises.
//!
//! In: the `app` table; each key is an app name.
//! Out: apps by name with every default filled in. The command is an argv
//! list (no shell); `dir` is resolved against the config file's directory
//! and must exist; ports `port .. port + 2*instances` must fit in 1..=65535
//! because a rolling deploy starts each new instance on a spare port of the
//! second half.

use std::collections::BTreeMap;

use super::schema::{defaults, App, AppLog, Restart};
use super::walk::{Ctx, Entry, Fields};

const APP_KEYS: &[&str] = &[
    "command",
    "dir",
    "instances",
    "port",
    "env",
    "restart",
    "backoff",
    "max_backoff",
    "stop_signal",
    "stop_timeout",
    "memory_limit",
    "cpu_limit",
    "open_files",
    "log",
    "start_timeout",
];

/// Signals an app may ask to be stopped with.
pub const STOP_SIGNALS: &[&str] = &["TERM", "INT", "QUIT", "HUP", "USR1", "USR2", "KILL"];

/// Every app name written in the file, so upstreams can refer to them.
pub(crate) fn names(entry: &Option<Entry>) -> Vec<String> {
    entry
        .as_ref()
        .and_then(|e| e.item.as_table_like())
        .map(|t| t.iter().map(|(name, _)| name.to_string()).collect())
        .unwrap_or_default()
}

pub(crate) fn apps(ctx: &mut Ctx, entry: Option<Entry>) -> BTreeMap<String, App> {
    let mut apps = BTreeMap::new();
    let Some(entry) = entry else {
        return apps;
    };
    let Some(table) = entry.item.as_table_like() else {
        ctx.expected("a table", &entry.key, entry.item, &entry.span);
        return apps;
    };
    for app in Fields::new(table, &entry.key, entry.span.clone(), &[]).all() {
        let name = ctx.section_name(&app, "app", "web");
        if let Some(parsed) = one(ctx, &app) {
            apps.insert(name, parsed);
        }
    }
    apps
}

fn one(ctx: &mut Ctx, entry: &Entry) -> Option<App> {
    let fields = ctx.table(entry, APP_KEYS)?;
    let mut app = App {
        command: Vec::new(),
        dir: ctx.base_dir.to_path_buf(),
        instances: defaults::APP_INSTANCES,
        port: 0,
        env: BTreeMap::new(),
        restart: Restart::Always,
        backoff: defaults::APP_BACKOFF,
        max_backoff: defaults::APP_MAX_BACKOFF,
        stop_signal: defaults::APP_STOP_SIGNAL.to_string(),
        stop_timeout: defaults::APP_STOP_TIMEOUT,
        memory_limit: None,
        cpu_limit: None,
        open_files: None,
        log: AppLog::Stdout,
        start_timeout: defaults::APP_START_TIMEOUT,
    };
    let mut ok = true;
    match fields.get("command") {
        Some(e) => {
            app.command = ctx
                .strings(&e)
                .unwrap_or_default()
                .into_iter()
                .map(|(_, text, _)| text)
                .collect();
            if app.command.first().is_none_or(|program| program.is_empty()) {
                let fix = "write the program and its arguments, e.g. [\"./server\", \"--release\"]";
                ctx.error(&e.span, &e.key, "is empty".into(), Some(fix.into()));
                ok = false;
            }
        }
        None => {
            let fix = "add command = [\"./server\"] (argv, no shell)";
            ctx.error(
                &fields.span,
                &fields.key("command"),
                "is missing".into(),
                Some(fix.into()),
            );
            ok = false;
        }
    }
    if let Some(e) = fields.get("dir") {
        if let Some(text) = ctx.string(&e) {
            let dir = ctx.base_dir.join(text);
            if dir.is_dir() {
                app.dir = dir;
            } else {
                let message = format!("{} is not a directory", dir.display());
                ctx.error(
                    &e.span,
                    &e.key,
                    message,
                    Some("create it or fix the path".into()),
                );
                ok = false;
            }
        }
    }
    if let Some(e) = fields.get("instances") {
        match ctx.integer(&e) {
            Some(n @ 1..=256) => app.instances = n as u32,
            Some(n) => {
                let fix = "use between 1 and 256 instances";
                ctx.error(&e.span, &e.key, format!("{n} instances"), Some(fix.into()));
                ok = false;
            }
            None => ok = false,
        }
    }
    match fields.get("port") {
        Some(e) => match ctx.integer(&e) {
            Some(port) => {
                // Wide enough that no written port can overflow the sum.
                let last = i128::from(port) + 2 * i128::from(app.instances) - 1;
                if port < 1 || last > 65535 {
                    let message = format!("ports {port}..={last} do not fit in 1..=65535 (each instance needs a spare port for deploys)");
                    let fix = "choose a lower port, e.g. 9001";
                    ctx.error(&e.span, &e.key, message, Some(fix.into()));
                    ok = false;
                } else {
                    app.port = port as u16;
                }
            }
            None => ok = false,
        },
        None => {
            let fix =
                "add port = 9001: instance i listens on 127.0.0.1:(port+i) and gets PORT=port+i";
            ctx.error(
                &fields.span,
                &fields.key("port"),
                "is missing".into(),
                Some(fix.into()),
            );
            ok = false;
        }
    }
    if let Some(e) = fields.get("env") {
        match e.item.as_table_like() {
            Some(table) => {
                for inner in Fields::new(table, &e.key, e.span.clone(), &[]).all() {
                    let name = inner.key.rsplit('.').next().unwrap_or_default().to_string();
                    if let Some(value) = ctx.string(&inner) {
                        app.env.insert(name, value);
                    }
                }
            }
            None => ctx.expected("a table", &e.key, e.item, &e.span),
        }
    }
    if let Some(e) = fields.get("restart") {
        match ctx.string(&e).as_deref() {
            Some("always") => app.restart = Restart::Always,
            Some("on-failure") => app.restart = Restart::OnFailure,
            Some("never") => app.restart = Restart::Never,
            Some(other) => {
                let fix = "use \"always\", \"on-failure\" or \"never\"";
                ctx.error(
                    &e.span,
                    &e.key,
                    format!("{other:?} is not a restart policy"),
                    Some(fix.into()),
                );
            }
            None => {}
        }
    }
    for (name, slot) in [
        ("backoff", &mut app.backoff),
        ("max_backoff", &mut app.max_backoff),
        ("stop_timeout", &mut app.stop_timeout),
        ("start_timeout", &mut app.start_timeout),
    ] {
        if let Some(e) = fields.get(name) {
            if let Some(d) = ctx.duration(&e) {
                *slot = d;
            }
        }
    }
    if app.max_backoff < app.backoff {
        if let Some(e) = fields.get("max_backoff") {
            let fix = "make max_backoff at least backoff";
            ctx.error(
                &e.span,
                &e.key,
                "is shorter than backoff".into(),
                Some(fix.into()),
            );
        }
    }
    if let Some(e) = fields.get("stop_signal") {
        if let Some(text) = ctx.string(&e) {
            let name = text.trim_start_matches("SIG").to_ascii_uppercase();
            if STOP_SIGNALS.contains(&name.as_str()) {
                app.stop_signal = name;
            } else {
                let fix = format!("use one of {}", STOP_SIGNALS.join(", "));
                ctx.error(
                    &e.span,
                    &e.key,
                    format!("{text:?} is not a stop signal"),
                    Some(fix),
                );
            }
        }
    }
    if let Some(e) = fields.get("memory_limit") {
        app.memory_limit = ctx.size(&e);
    }
    if let Some(e) = fields.get("cpu_limit") {
        let value = e
            .item
            .as_float()
            .or_else(|| e.item.as_integer().map(|i| i as f64));
        match value {
            Some(cores) if cores > 0.0 && cores <= 1024.0 => app.cpu_limit = Some(cores),
            _ => {
                let fix = "write a number of cores, e.g. 0.5";
                ctx.error(
                    &e.span,
                    &e.key,
                    "is not a positive number of cores".into(),
                    Some(fix.into()),
                );
            }
        }
    }
    if let Some(e) = fields.get("open_files") {
        match ctx.integer(&e) {
            Some(n) if n >= 16 => app.open_files = Some(n as u64),
            Some(n) => {
                let fix = "use at least 16, e.g. 65536";
                ctx.error(
                    &e.span,
                    &e.key,
                    format!("{n} is too few open files"),
                    Some(fix.into()),
                );
            }
            None => {}
        }
    }
    if let Some(e) = fields.get("log") {
        match ctx.string(&e).as_deref() {
            Some("stdout") => app.log = AppLog::Stdout,
            Some("off") => app.log = AppLog::Off,
            Some("") => {
                let fix = "write \"stdout\", \"off\" or a file path";
                ctx.error(&e.span, &e.key, "is empty".into(), Some(fix.into()));
            }
            Some(path) => app.log = AppLog::File(ctx.base_dir.join(path)),
            None => {}
        }
    }
    fields.finish(ctx);
    ok.then_some(app)
}
