//! registry-api on ephemeral loopback ports, in this process, as tests use it.

use std::net::SocketAddr;

use service_runtime::token::SharedToken;
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
        TestRegistry::start_with(registry_api::Config::with_storage(storage)).await
    }

    /// Starts registry-api checking credentials with auth-service at `auth`.
    pub async fn start_authenticated(storage: &str, auth: &TestAuth) -> Self {
        let mut config = registry_api::Config::with_storage(storage);
        config.auth_endpoint = Some(auth.url.parse().expect("auth URL"));
        TestRegistry::start_with(config).await
    }

    /// Starts registry-api with `config`, on ephemeral ports.
    pub async fn start_with(mut config: registry_api::Config) -> Self {
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

/// auth-service on an ephemeral loopback port, in this process.
#[derive(Debug)]
pub struct TestAuth {
    /// `http://127.0.0.1:<port>`, the `--auth-endpoint` value.
    pub url: String,
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl TestAuth {
    /// Serves the users of `htpasswd` under the optional `policy`.
    pub async fn start(htpasswd: &std::path::Path, policy: Option<&std::path::Path>) -> Self {
        TestAuth::start_with_token(htpasswd, policy, None).await
    }

    /// The same, refusing callers that do not present `token`.
    pub async fn start_with_token(
        htpasswd: &std::path::Path,
        policy: Option<&std::path::Path>,
        token: Option<SharedToken>,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the auth port");
        TestAuth::serve(listener, htpasswd, policy, token)
    }

    /// Serves again on the address it had, after [`TestAuth::stop`].
    pub async fn restart(
        addr: SocketAddr,
        htpasswd: &std::path::Path,
        policy: Option<&std::path::Path>,
    ) -> Self {
        let listener = TcpListener::bind(addr)
            .await
            .expect("binding the auth port again");
        TestAuth::serve(listener, htpasswd, policy, None)
    }

    fn serve(
        listener: TcpListener,
        htpasswd: &std::path::Path,
        policy: Option<&std::path::Path>,
        token: Option<SharedToken>,
    ) -> Self {
        let addr = listener.local_addr().expect("bound address");
        let stop = CancellationToken::new();
        let shutdown = stop.clone();
        let (htpasswd, policy) = (htpasswd.to_owned(), policy.map(ToOwned::to_owned));
        let task = tokio::spawn(async move {
            if let Err(error) = auth_service::run(htpasswd, policy, listener, token, shutdown).await
            {
                panic!("auth-service failed: {error}");
            }
        });
        TestAuth {
            url: format!("http://{addr}"),
            addr,
            shutdown: stop,
            task: Some(task),
        }
    }

    /// Stops the service and waits until its port is closed.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await.expect("auth-service task");
        }
    }
}

impl Drop for TestAuth {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// An htpasswd line for `user` with a cheap bcrypt hash (cost 4), for tests.
pub fn bcrypt_line(user: &str, password: &str) -> String {
    let hash = bcrypt::hash(password, 4).expect("bcrypt");
    format!("{user}:{hash}")
}

/// An htpasswd line for `user` with an argon2id hash.
pub fn argon2id_line(user: &str, password: &str) -> String {
    format!("{user}:{}", auth_service::hashing::argon2id(password))
}
