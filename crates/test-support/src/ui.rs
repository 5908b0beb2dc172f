//! ui-backend on an ephemeral loopback port, in this process, in front of
//! a [`TestRegistry`](crate::TestRegistry).

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running ui-backend; stops when dropped.
#[derive(Debug)]
pub struct TestUi {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl TestUi {
    /// Serves the UI of `registry`, reading status from its admin port.
    pub async fn start(registry: &crate::TestRegistry) -> Self {
        let config = ui_backend::Config::new(
            registry.url.parse().expect("registry URL"),
            format!("http://{}", registry.admin_addr)
                .parse()
                .expect("admin URL"),
        );
        TestUi::start_with(config).await
    }

    /// Serves with `config`, on an ephemeral port.
    pub async fn start_with(mut config: ui_backend::Config) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the UI port");
        let addr = listener.local_addr().expect("bound address");
        config.listen = addr;
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let task = tokio::spawn(async move {
            if let Err(error) = ui_backend::run(config, listener, token).await {
                panic!("ui-backend failed: {error:#}");
            }
        });
        TestUi {
            url: format!("http://{addr}"),
            addr,
            shutdown,
            task: Some(task),
        }
    }

    /// Stops the server and waits until it has finished.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await.expect("ui-backend task");
        }
    }
}

impl Drop for TestUi {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
