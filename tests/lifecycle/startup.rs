//! Starting wharf: a taken port exits 1 naming the address and its
//! holder, no config file runs the demo, and the pretty log has no colour
//! codes when it does not go to a terminal.

use super::*;

#[test]
fn a_taken_port_exits_1_naming_the_address_and_the_holder() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("wharf.toml");
    std::fs::write(
        &path,
        format!("[server]\nlisten = [\"{addr}\"]\nadmin = \"off\"\n"),
    )
    .expect("write");
    let output = Command::new(WHARF)
        .args(["run", "-c"])
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .expect("run wharf");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
    assert!(
        stderr.contains("address already in use") || stderr.contains("Address already in use"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("pid {}", std::process::id())),
        "holder not named: {stderr}"
    );
}

#[test]
fn without_a_config_file_wharf_runs_the_demo() {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_ports(1);
    let mut child = Command::new(WHARF)
        .arg("run")
        .current_dir(dir.path())
        .env("PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let result = runtime.block_on(async {
        let url = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let welcome = get(&format!("{url}/"), &[]).await;
        // The echo instances are supervised processes; they answer once ready.
        let mut ports = std::collections::BTreeSet::new();
        let mut echoed = None;
        for _ in 0..200 {
            let reply = get(&format!("{url}/echo/hi"), &[]).await;
            if reply.status == 200 {
                ports.insert(reply.json()["port"].as_u64());
                echoed = Some(reply);
                if ports.len() == 2 {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let echoed = (echoed.expect("the demo echo never answered"), ports);
        (welcome, echoed)
    });
    // The README's next commands, in the same directory: they find the
    // demo's admin API without a config file.
    let admin_commands: Vec<_> = [&["status"][..], &["reload"], &["deploy", "demo_echo"]]
        .iter()
        .map(|args| {
            let output = Command::new(WHARF)
                .args(*args)
                .current_dir(dir.path())
                .env_remove("WHARF_ADMIN_TOKEN")
                .stdin(Stdio::null())
                .output()
                .expect("run wharf");
            (args.join(" "), output)
        })
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    for (command, output) in &admin_commands {
        assert!(
            output.status.success(),
            "wharf {command} against the demo: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let status = String::from_utf8_lossy(&admin_commands[0].1.stdout);
    assert!(status.contains("<embedded demo>"), "{status}");
    assert!(status.contains("demo_echo"), "{status}");
    let (welcome, (echoed, ports)) = result;
    assert_eq!(welcome.status, 200);
    assert!(welcome.text().contains("wharf is running"));
    assert_eq!(echoed.json()["path"], "/echo/hi");
    assert_eq!(
        ports.len(),
        2,
        "both supervised echo instances answer: {ports:?}"
    );
}

#[test]
fn the_pretty_log_has_no_colour_codes_when_it_does_not_go_to_a_terminal() {
    // journald, a file or a pipe would keep the escape codes as they are.
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("wharf.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\nadmin = \"off\"\n\n[log]\nformat = \"pretty\"\n\n{}",
            respond_site("hi")
        ),
    )
    .expect("write");
    let mut child = Command::new(WHARF)
        .args(["run", "-c"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wharf");
    let stderr = child.stderr.take().expect("stderr");
    let mut seen = Vec::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
        let listening = line.contains("listening");
        seen.push(line);
        if listening {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        seen.iter().any(|l| l.contains("listening")),
        "wharf never said it listens: {seen:?}"
    );
    assert!(
        seen.iter().all(|l| !l.contains('\u{1b}')),
        "colour codes in a piped log: {seen:?}"
    );
}
