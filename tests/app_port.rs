//! An app's `command` reads the instance's own port at run time: `$PORT`
//! or `$${PORT}` through a shell, as docs/apps.md says, not wharf's `PORT`
//! at load time.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use support::*;

/// Asks wharf until both instances of the app answered; their ports.
async fn ports_answering(wharf: &Wharf) -> BTreeSet<u64> {
    let mut ports = BTreeSet::new();
    for _ in 0..250 {
        let reply = get(&wharf.url("/"), &[]).await;
        if reply.status == 200 {
            ports.extend(reply.json()["port"].as_u64());
            if ports.len() == 2 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ports
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_instance_gets_its_own_port_through_a_shell() {
    // `env -u PORT`: the echo backend would read PORT itself; here only
    // the argument the shell expanded tells it its port.
    for written in ["\\\"$PORT\\\"", "$${PORT}"] {
        let port = free_ports(4);
        let body = format!(
            "[[site]]\n  [[site.route]]\n  path = \"/\"\n  upstream = \"web\"\n\n\
             [upstream.web]\napp = \"web\"\n\n\
             [app.web]\ncommand = [\"sh\", \"-c\", \"exec env -u PORT {WHARF} echo --port {written}\"]\n\
             instances = 2\nport = {port}\n"
        );
        let wharf = Wharf::start("", &body);
        let ports = ports_answering(&wharf).await;
        let expected: BTreeSet<u64> = [u64::from(port), u64::from(port) + 1].into();
        assert_eq!(ports, expected, "{written}: {:?}", wharf.logs());
    }
}
