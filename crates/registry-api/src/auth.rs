//! Every request behind auth-service: Basic credentials are verified over
//! gRPC (and remembered for a short time under a keyed hash, never the
//! password itself), then the action on the repository is authorized.
//! Repeated failures from one client are slowed and then refused, for that
//! client only. When auth-service cannot be reached, requests that need it
//! get 503: never anonymous access. User names are never logged here:
//! auth-service logs the ones that exist.

mod cache;
mod limiter;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, header};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use registry_core::{ErrorCode, RegistryError, RepositoryName, parse_basic};
use registry_proto::auth::authenticator_client::AuthenticatorClient;
use registry_proto::auth::{
    Action as ProtoAction, AuthorizeRequest, StatusRequest, VerifyOutcome, VerifyRequest,
};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use self::cache::{AuthCache, CredentialKey};
use self::limiter::FailureLimiter;
use service_runtime::client_address::TrustedProxies;
use service_runtime::token::SharedToken;

/// How often auth-service is asked whether its files changed.
const STATUS_POLL: Duration = Duration::from_secs(2);
/// Longest wait for a permission or status call.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for a password check: auth-service queues them behind its
/// CPU-bound workers rather than failing a burst of logins.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(30);
/// Longer user names are refused before anything is counted or checked.
const MAX_USER_NAME: usize = 256;

/// A password check under way, shared by every request with the same
/// credentials.
type Check = Shared<BoxFuture<'static, Result<Principal, RegistryError>>>;

/// What a request wants to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Pull,
    Push,
    Delete,
}

impl Action {
    fn proto(self) -> i32 {
        let action = match self {
            Action::Pull => ProtoAction::Pull,
            Action::Push => ProtoAction::Push,
            Action::Delete => ProtoAction::Delete,
        };
        action as i32
    }
}

/// Who is asking: a verified user, or nobody.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    User(String),
    Anonymous,
}

impl Principal {
    fn proto(&self) -> String {
        match self {
            Principal::User(name) => name.clone(),
            Principal::Anonymous => String::new(),
        }
    }
}

/// The realm of Basic challenges and `UNAUTHORIZED` details.
pub(crate) const REALM: &str = "Berth";

/// The client side of auth-service, with its caches and failure limits.
#[derive(Debug)]
pub struct AuthGate {
    client: AuthenticatorClient<Channel>,
    /// Presented on every call, when auth-service expects one.
    token: Option<SharedToken>,
    cache: AuthCache,
    limiter: Arc<FailureLimiter>,
    proxies: TrustedProxies,
    /// Checks under way by credentials: a client sending many requests at
    /// once before its login is remembered (a pull fetching layers in
    /// parallel) costs one check, counted once.
    checking: Mutex<HashMap<CredentialKey, Check>>,
}

fn unavailable(error: &tonic::Status) -> RegistryError {
    tracing::error!(code = ?error.code(), message = error.message(), "auth-service call failed");
    RegistryError::new(
        ErrorCode::Unavailable,
        "the authentication service is unavailable; retry shortly",
    )
    .with_detail(serde_json::json!({ "retryAfterSeconds": 5 }))
}

impl AuthGate {
    /// A gate that talks to auth-service at `endpoint` presenting
    /// `token`, connecting lazily and reconnecting by itself, and that
    /// believes `X-Forwarded-For` from `proxies` only.
    pub fn connect(
        endpoint: &url::Url,
        token: Option<SharedToken>,
        proxies: TrustedProxies,
    ) -> Result<Arc<AuthGate>, tonic::transport::Error> {
        let channel = tonic::transport::Endpoint::from_shared(endpoint.to_string())?
            .connect_timeout(Duration::from_secs(2))
            .connect_lazy();
        Ok(Arc::new(AuthGate {
            client: AuthenticatorClient::new(channel),
            token,
            cache: AuthCache::default(),
            limiter: Arc::default(),
            proxies,
            checking: Mutex::default(),
        }))
    }

    /// A call to auth-service: the token attached, a deadline set.
    fn request<T>(&self, message: T, timeout: Duration) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(timeout);
        if let Some(token) = &self.token {
            token.attach(&mut request);
        }
        request
    }

    /// Asks auth-service for its file generation until `shutdown`, so a
    /// reload empties the caches within a poll interval.
    pub async fn follow_generation(self: Arc<Self>, shutdown: CancellationToken) {
        let mut ticks = tokio::time::interval(STATUS_POLL);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            let request = self.request(StatusRequest {}, CALL_TIMEOUT);
            match self.client.clone().status(request).await {
                Ok(status) => {
                    let status = status.into_inner();
                    self.cache.observe_generation(status.generation);
                    metrics::gauge!("auth_service_failed_reloads")
                        .set(status.failed_reloads as f64);
                }
                Err(error) => {
                    tracing::warn!(code = ?error.code(), "auth-service status unavailable")
                }
            }
        }
    }

    fn unauthorized(&self, message: &str) -> RegistryError {
        RegistryError::new(ErrorCode::Unauthorized, message)
            .with_detail(serde_json::json!({ "realm": REALM }))
    }

    /// Who sent the request: the verified user of its `Authorization`
    /// header, or anonymous when it has none. `peer` is the connection's
    /// address; the client's comes from it and the trusted proxies.
    pub async fn authenticate(
        self: &Arc<Self>,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
    ) -> Result<Principal, RegistryError> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Ok(Principal::Anonymous);
        };
        let (user, password) = parse_basic(value.as_bytes()).ok_or_else(|| {
            self.unauthorized("the Authorization header is not Basic credentials")
        })?;
        if user.len() > MAX_USER_NAME {
            return Err(self.unauthorized("the user name is too long"));
        }
        let client = self.proxies.client(peer, headers);
        // Before the cache: a limited client must not learn that a guess
        // matches a login someone else made a moment ago.
        if let Some(retry_after) = self.limiter.refused(&user, client) {
            return Err(too_many(retry_after));
        }
        let key = self.cache.credential_key(&user, &password);
        if let Some(principal) = self.cache.verified(&key) {
            return Ok(Principal::User(principal));
        }
        self.check(user, password, key, client).await
    }

    /// Joins the check of these credentials under way, or starts one. The
    /// check runs as its own task, so it finishes (and is counted) even
    /// when every request waiting for it is gone.
    async fn check(
        self: &Arc<Self>,
        user: String,
        password: String,
        key: CredentialKey,
        client: Option<IpAddr>,
    ) -> Result<Principal, RegistryError> {
        let check = {
            let mut checking = self.checking.lock().expect("never poisoned");
            if let Some(check) = checking.get(&key) {
                check.clone()
            } else {
                let gate = Arc::clone(self);
                let task_key = key.clone();
                let task = tokio::spawn(async move {
                    let outcome = gate.verify(user, password, task_key.clone(), client).await;
                    gate.checking
                        .lock()
                        .expect("never poisoned")
                        .remove(&task_key);
                    outcome
                });
                let check = async move {
                    task.await.unwrap_or_else(|_| {
                        Err(unavailable(&tonic::Status::internal(
                            "the login check stopped",
                        )))
                    })
                }
                .boxed()
                .shared();
                checking.insert(key, check.clone());
                check
            }
        };
        check.await
    }

    async fn verify(
        &self,
        user: String,
        password: String,
        key: CredentialKey,
        client: Option<IpAddr>,
    ) -> Result<Principal, RegistryError> {
        let attempt = self.limiter.begin(&user, client).map_err(too_many)?;
        let request = VerifyRequest {
            username: user,
            password,
            client_address: client
                .map(|address| address.to_string())
                .unwrap_or_default(),
        };
        let response = match self
            .client
            .clone()
            .verify(self.request(request, VERIFY_TIMEOUT))
            .await
        {
            Ok(response) => response.into_inner(),
            Err(error) => {
                // Not reached (stopped, restarting): a client retrying
                // through the outage must not be locked out after it.
                if error.code() == tonic::Code::Unavailable {
                    attempt.not_asked();
                }
                return Err(unavailable(&error));
            }
        };
        self.cache.observe_generation(response.generation);
        if response.outcome == VerifyOutcome::Accepted as i32 {
            attempt.succeeded();
            self.cache
                .remember_verified(key, response.principal.clone());
            return Ok(Principal::User(response.principal));
        }
        metrics::counter!("auth_refused_total", "reason" => "bad_credentials").increment(1);
        tokio::time::sleep(attempt.failed()).await;
        tracing::info!(client = ?client, "login refused: wrong user name or password");
        Err(self.unauthorized("user name or password is wrong"))
    }

    /// Refuses unless `principal` may take `action` on `repository`: 401 for
    /// anonymous clients (so they log in), 403 for users.
    pub async fn authorize(
        &self,
        principal: &Principal,
        repository: &RepositoryName,
        action: Action,
    ) -> Result<(), RegistryError> {
        if self
            .allowed(principal, std::slice::from_ref(repository), action)
            .await?[0]
        {
            return Ok(());
        }
        Err(match principal {
            Principal::Anonymous => self.unauthorized("authentication required"),
            Principal::User(user) => RegistryError::new(
                ErrorCode::Denied,
                format!("{user} may not {action:?} in {repository}").to_lowercase(),
            ),
        })
    }

    /// Refuses anonymous clients (`GET /v2/` and the catalog need a login).
    pub fn require_user(&self, principal: &Principal) -> Result<(), RegistryError> {
        match principal {
            Principal::User(_) => Ok(()),
            Principal::Anonymous => Err(self.unauthorized("authentication required")),
        }
    }

    /// For each repository, whether `principal` may take `action` there.
    pub async fn allowed(
        &self,
        principal: &Principal,
        repositories: &[RepositoryName],
        action: Action,
    ) -> Result<Vec<bool>, RegistryError> {
        let mut answers: Vec<Option<bool>> = repositories
            .iter()
            .map(|repository| self.cache.grant(principal, repository, action))
            .collect();
        let missing: Vec<String> = repositories
            .iter()
            .zip(&answers)
            .filter(|(_, answer)| answer.is_none())
            .map(|(repository, _)| repository.to_string())
            .collect();
        if !missing.is_empty() {
            let request = AuthorizeRequest {
                principal: principal.proto(),
                repositories: missing,
            };
            let response = self
                .client
                .clone()
                .authorize(self.request(request, CALL_TIMEOUT))
                .await
                .map_err(|error| unavailable(&error))?
                .into_inner();
            self.cache.observe_generation(response.generation);
            let mut grants = response.grants.into_iter();
            for (repository, answer) in repositories.iter().zip(answers.iter_mut()) {
                if answer.is_some() {
                    continue;
                }
                let grant = grants.next().ok_or_else(|| {
                    unavailable(&tonic::Status::internal(
                        "auth-service answered fewer grants than asked",
                    ))
                })?;
                let actions: Vec<i32> = grant.actions;
                self.cache.remember_grants(principal, repository, &actions);
                *answer = Some(actions.contains(&action.proto()));
            }
        }
        Ok(answers
            .into_iter()
            .map(|answer| answer.unwrap_or(false))
            .collect())
    }
}

/// 429 `TOOMANYREQUESTS` for a client that failed too often.
fn too_many(retry_after: Duration) -> RegistryError {
    metrics::counter!("auth_refused_total", "reason" => "rate_limited").increment(1);
    RegistryError::new(
        ErrorCode::TooManyRequests,
        "too many failed logins from this address; wait before trying again",
    )
    .with_detail(serde_json::json!({ "retryAfterSeconds": retry_after.as_secs().max(1) }))
}
