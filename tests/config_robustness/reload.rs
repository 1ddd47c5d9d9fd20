//! Reloading a running wharf with mutated configs: a bad reload loses
//! nothing, and a reload is accepted exactly when `wharf check` accepts
//! the same file.

use super::mutate::mutate;
use super::*;

/// Reloads with a mutated config in the running-wharf test.
const RELOADS: usize = 50;

fn reload_body(dead: [std::net::SocketAddr; 2]) -> String {
    format!(
        r#"[[site]]
hosts = ["*"]
  [[site.route]]
  path = "/"
  respond = "original"
  [[site.route]]
  path = "/files/"
  static = "static"
  [[site.route]]
  path = "/api/"
  upstream = "api"
  [[site.route]]
  path = "/old/"
  redirect = "/"
  status = 301
  [site.cors]
  origins = ["https://app.example.com"]
  max_age = "1h"

[upstream.api]
servers = ["{}", {{ addr = "{}", weight = 3, backup = true }}]
retries = 1
[upstream.api.health]
interval = "1s"
timeout = "500ms"
[upstream.api.breaker]
failures = 2
"#,
        dead[0], dead[1]
    )
}

async fn post_reload(wharf: &Wharf) -> Reply {
    let url = format!("http://{}/reload", wharf.admin);
    let client = client();
    let request = send(&client, Method::POST, &url, &[], b"");
    tokio::time::timeout(Duration::from_secs(10), request)
        .await
        .expect("reload answered in time")
}

async fn get_root(wharf: &Wharf) -> Reply {
    tokio::time::timeout(Duration::from_secs(10), get(&wharf.url("/"), &[]))
        .await
        .expect("GET / answered in time")
}

/// Writes the config file whole, as an editor or deploy tool would.
fn write_config(wharf: &Wharf, body: &[u8]) {
    let mut text = config_text(wharf.dir.path(), "", "").into_bytes();
    text.extend_from_slice(body);
    let tmp = wharf.dir.path().join("wharf.toml.tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, &wharf.config_path).expect("rename");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_reload_loses_nothing_and_a_good_one_is_one_check_accepts() {
    let seed = seed();
    let mut rng = fastrand::Rng::with_seed(seed ^ 0x5EED);
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("static")).expect("static");
    std::fs::write(dir.path().join("static/a.txt"), "a").expect("file");
    let good = reload_body([dead_addr(), dead_addr()]);
    let mut wharf = Wharf::start_in(dir, "", &good);
    let file = wharf.config_path.display().to_string();
    let scratch = wharf.dir.path().join("check");
    std::fs::create_dir_all(&scratch).expect("scratch");
    let deadline = Instant::now() + Duration::from_secs(25);
    let (mut accepted, mut rejected) = (0, 0);

    for i in 0..RELOADS {
        assert!(
            Instant::now() < deadline,
            "reloads took too long (seed {seed})"
        );
        let (body, steps) = mutate(&mut rng, &good);
        let case = || {
            format!(
                "reload {i} (seed {seed}) [{}]: {}",
                steps.join("; "),
                show(&body)
            )
        };
        write_config(&wharf, &body);
        let reply = post_reload(&wharf).await;
        assert!(wharf.is_running(), "wharf exited after {}", case());
        let checked = run_check(&wharf.config_path, &scratch, &[]).expect("check in time");
        match reply.status.as_u16() {
            200 => {
                accepted += 1;
                assert_eq!(
                    checked.code,
                    Some(0),
                    "reload accepted a config that check rejects: {}\n{}",
                    case(),
                    checked.stderr
                );
                // Whatever it now serves, it answers.
                get_root(&wharf).await;
                write_config(&wharf, good.as_bytes());
                assert_eq!(
                    post_reload(&wharf).await.status,
                    200,
                    "restoring after {}",
                    case()
                );
            }
            422 => {
                rejected += 1;
                let error = reply.json()["error"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                judge_errors(&file, &error)
                    .unwrap_or_else(|why| panic!("{why} for {}:\n{error}", case()));
                assert_eq!(
                    checked.code,
                    Some(1),
                    "check accepts a config that reload rejects: {}\n{error}",
                    case()
                );
            }
            other => panic!("reload answered {other} for {}: {}", case(), reply.text()),
        }
        let answer = get_root(&wharf).await;
        assert_eq!(
            (answer.status.as_u16(), answer.text().as_str()),
            (200, "original"),
            "the running config stopped serving after {}",
            case()
        );
    }
    assert!(
        rejected > RELOADS / 2,
        "only {rejected} of {RELOADS} reloads were rejected (seed {seed})"
    );

    write_config(&wharf, good.as_bytes());
    wharf.signal("HUP");
    let reloaded = eventually(Duration::from_secs(10), || {
        wharf.logs_count("config reloaded") > accepted * 2
    })
    .await;
    assert!(
        reloaded,
        "SIGHUP with the good config was not applied: {:?}",
        wharf.logs()
    );
    assert_eq!(get_root(&wharf).await.text(), "original");
    assert!(wharf.is_running());
    assert!(
        !wharf.logs().iter().any(|l| l.contains("panicked")),
        "wharf panicked (seed {seed}): {:?}",
        wharf.logs()
    );
}
