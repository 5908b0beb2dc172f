//! registry-api on ephemeral loopback ports, in this process, as tests use it.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A running registry-api; stops when dropped.
#[derive(Debug)]
pub struct TestRegistry {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl TestRegistry {
    /// Starts registry-api over the store at `storage` (a `--storage` value).
    pub async fn start(storage: &str) -> Self {
        let mut config = registry_api::Config::with_storage(storage);
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the API port");
        let admin = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the admin port");
        let addr = listener.local_addr().expect("bound address");
        let admin_addr = admin.local_addr().expect("bound address");
        config.listen = addr;
        config.admin_listen = admin_addr;
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let task = tokio::spawn(async move {
            if let Err(error) = registry_api::run(config, listener, admin, token).await {
                panic!("registry-api failed: {error}");
            }
        });
        TestRegistry {
            url: format!("http://{addr}"),
            addr,
            admin_addr,
            shutdown,
            task: Some(task),
        }
    }

    /// `127.0.0.1:<port>`, as image references spell the registry.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Stops the server and waits until it has finished.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await.expect("registry-api task");
        }
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
