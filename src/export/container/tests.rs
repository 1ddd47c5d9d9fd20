//! Tests of what `needs` reads from a config: ports, refusals, files
//! outside the build context, variables and secrets in the text.

use super::*;

fn parse(text: &str, dir: &Path) -> Config {
    let env = |_: &str| None;
    crate::config::parse(text, "wharf.toml", dir, &env).expect("valid config")
}

#[test]
fn ports_are_named_by_kind_and_loopback_listeners_are_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("wharf.toml");
    let config = parse(
        &format!(
            "[server]\nlisten = [\"0.0.0.0:8080\", \"[::]:8080\", \"0.0.0.0:8081\"]\n\
             https = [\"0.0.0.0:8443\"]\nadmin = \"[::]:9180\"\n\
             [tls]\nmode = \"internal\"\nstorage = \"{}\"\n",
            dir.path().join("state").display()
        ),
        dir.path(),
    );
    let needs = needs(&config, &file).expect("needs");
    let ports: Vec<(&str, u16)> = needs
        .ports
        .iter()
        .map(|p| (p.name.as_str(), p.port))
        .collect();
    assert_eq!(
        ports,
        [("http", 8080), ("http-2", 8081), ("https", 8443)],
        "one port per number, named by kind"
    );
    assert_eq!(
        needs.ready_probe,
        Some("127.0.0.1:9180".parse().expect("addr"))
    );
    assert!(!needs.low_ports);
    assert_eq!(needs.writable, [dir.path().join("state")]);

    for (listen, problem) in [
        ("127.0.0.1:8080", "on loopback"),
        ("192.0.2.7:8080", "one address of this machine"),
        ("0.0.0.0:0", "port 0"),
    ] {
        let config = parse(&format!("[server]\nlisten = [\"{listen}\"]\n"), dir.path());
        let error = super::needs(&config, &file).expect_err(listen);
        assert!(
            error.contains(listen) && error.contains(problem) && error.contains("0.0.0.0:PORT"),
            "{error}"
        );
    }
    let config = parse(
        "[server]\nlisten = [\"0.0.0.0:8080\"]\nadmin = \"192.0.2.7:9180\"\n",
        dir.path(),
    );
    let error = super::needs(&config, &file).expect_err("admin on one address");
    assert!(error.contains("server.admin 192.0.2.7:9180"), "{error}");
    let config = parse("", dir.path());
    let error = super::needs(&config, Path::new("/wharf.toml")).expect_err("in /");
    assert!(error.contains("whole file system"), "{error}");
}

#[test]
fn environment_variables_and_secret_files_are_found_in_the_text() {
    let (env, files) = references(
        "# ${COMMENTED}\nlisten = [\"0.0.0.0:${PORT:-8080}\"]\n\
         admin_token = \"${file:token}\"\nurl = \"$${LITERAL} ${DB} ${PORT}\"\n",
    );
    assert_eq!(env, [("PORT".to_string(), true), ("DB".to_string(), false)]);
    assert_eq!(files, ["token"]);
    assert_eq!(
        program_of(&["env".into(), "-i".into(), "A=1".into(), "node".into()]),
        Some("node")
    );
    assert_eq!(program_of(&["./server".into()]), Some("./server"));
}

#[test]
fn files_outside_the_config_directory_are_listed() {
    let outer = tempfile::tempdir().expect("temp dir");
    let context = outer.path().join("site");
    std::fs::create_dir_all(context.join("public")).expect("public");
    std::fs::create_dir_all(outer.path().join("elsewhere")).expect("elsewhere");
    let file = context.join("wharf.toml");
    let config = parse(
        "[server]\nlisten = [\"0.0.0.0:80\"]\nadmin = \"off\"\n\
         [[site]]\n[[site.route]]\npath = \"/a/\"\nstatic = \"public\"\n\
         [[site.route]]\npath = \"/b/\"\nstatic = \"../elsewhere\"\n\
         [app.web]\ncommand = [\"./server\"]\nport = 9000\n\
         [app.py]\ncommand = [\"python3\", \"app.py\"]\nport = 9100\n\
         [app.node]\ncommand = [\"/usr/bin/node\", \"app.js\"]\nport = 9200\n\
         [app.up]\ncommand = [\"../bin/up\"]\nport = 9300\n",
        &context,
    );
    let needs = needs(&config, &file).expect("needs");
    let keys: Vec<&str> = needs.outside.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(
        keys,
        ["app.up.command", "site[0].route[1].static"],
        "{:?}",
        needs.outside
    );
    let programs: Vec<(&str, &str)> = needs
        .programs
        .iter()
        .map(|(app, program)| (app.as_str(), program.as_str()))
        .collect();
    assert_eq!(programs, [("node", "/usr/bin/node"), ("py", "python3")]);
    assert!(needs.low_ports);
    assert_eq!(needs.ready_probe, None);
    assert_eq!(needs.stop, Duration::from_secs(30 + 10 + 5));
}
