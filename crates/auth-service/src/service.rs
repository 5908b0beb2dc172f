//! The `registry.auth.v1.Authenticator` gRPC service over the files in
//! force. Password checks run on a bounded set of workers (one per CPU):
//! a burst of logins queues rather than fails, and each answer is held
//! until a little more than the file's slowest verification time has
//! passed, so timing does not tell which user names exist. Failed logins are logged with the
//! client's address; the user name only when it exists, escaped.

use std::sync::Arc;
use std::time::Duration;

use registry_proto::auth::authenticator_server::Authenticator;
use registry_proto::auth::{
    Action as ProtoAction, AuthorizeRequest, AuthorizeResponse, RepositoryGrant, StatusRequest,
    StatusResponse, VerifyOutcome, VerifyRequest, VerifyResponse,
};
use tonic::{Request, Response, Status};

use crate::files::Files;
use crate::htpasswd::{Checked, MAX_USER_NAME};
use crate::policy::{ALL_ACTIONS, Action};

/// Longest a check waits for a worker before it is refused as overload.
const QUEUE_LIMIT: Duration = Duration::from_secs(25);

/// Requests may not name more repositories than this at once.
const MAX_REPOSITORIES: usize = 100_000;

/// The gRPC service.
#[derive(Debug, Clone)]
pub struct AuthenticatorService {
    files: Arc<Files>,
    /// One permit per password check running at once.
    workers: Arc<tokio::sync::Semaphore>,
}

impl AuthenticatorService {
    pub fn new(files: Arc<Files>) -> Self {
        let workers = std::thread::available_parallelism().map_or(2, usize::from);
        AuthenticatorService {
            files,
            workers: Arc::new(tokio::sync::Semaphore::new(workers)),
        }
    }
}

fn to_proto(action: Action) -> i32 {
    let action = match action {
        Action::Pull => ProtoAction::Pull,
        Action::Push => ProtoAction::Push,
        Action::Delete => ProtoAction::Delete,
    };
    action as i32
}

#[tonic::async_trait]
impl Authenticator for AuthenticatorService {
    async fn verify(
        &self,
        request: Request<VerifyRequest>,
    ) -> Result<Response<VerifyResponse>, Status> {
        let VerifyRequest {
            username,
            password,
            client_address,
        } = request.into_inner();
        if username.len() > MAX_USER_NAME {
            tracing::info!(
                client = client_address.as_str(),
                "login failed: unknown user"
            );
            return Ok(Response::new(VerifyResponse {
                outcome: VerifyOutcome::Rejected as i32,
                principal: String::new(),
                generation: self.files.current().generation,
            }));
        }
        let _worker = tokio::time::timeout(QUEUE_LIMIT, self.workers.clone().acquire_owned())
            .await
            .map_err(|_| Status::resource_exhausted("too many logins at once; retry shortly"))?
            .map_err(|_| Status::unavailable("auth-service is stopping"))?;
        let loaded = self.files.current();
        let started = tokio::time::Instant::now();
        let generation = loaded.generation;
        let checking = loaded.clone();
        let (checked, username) = tokio::task::spawn_blocking(move || {
            (checking.users.check(&username, &password), username)
        })
        .await
        .map_err(|_| Status::internal("verification failed"))?;
        tokio::time::sleep_until(started + loaded.users.pace.hold()).await;
        let client = client_address.as_str();
        match checked {
            Checked::Accepted => tracing::debug!(user = ?username, client, "login accepted"),
            Checked::WrongPassword => {
                tracing::info!(user = ?username, client, "login failed: wrong password");
            }
            Checked::UnknownUser => tracing::info!(client, "login failed: unknown user"),
        }
        let (outcome, principal) = match checked {
            Checked::Accepted => (VerifyOutcome::Accepted, username),
            _ => (VerifyOutcome::Rejected, String::new()),
        };
        Ok(Response::new(VerifyResponse {
            outcome: outcome as i32,
            principal,
            generation,
        }))
    }

    async fn authorize(
        &self,
        request: Request<AuthorizeRequest>,
    ) -> Result<Response<AuthorizeResponse>, Status> {
        let request = request.into_inner();
        if request.repositories.len() > MAX_REPOSITORIES {
            return Err(Status::invalid_argument(format!(
                "at most {MAX_REPOSITORIES} repositories per request"
            )));
        }
        let loaded = self.files.current();
        let principal = Some(request.principal.as_str()).filter(|principal| !principal.is_empty());
        let grants = request
            .repositories
            .into_iter()
            .map(|repository| {
                let actions: Vec<i32> = match (&loaded.policy, principal) {
                    (Some(policy), _) => policy
                        .allowed(principal, &repository)
                        .into_iter()
                        .map(to_proto)
                        .collect(),
                    (None, Some(_)) => ALL_ACTIONS.into_iter().map(to_proto).collect(),
                    (None, None) => Vec::new(),
                };
                RepositoryGrant {
                    repository,
                    actions,
                }
            })
            .collect();
        Ok(Response::new(AuthorizeResponse {
            grants,
            generation: loaded.generation,
        }))
    }

    async fn status(
        &self,
        _request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        let loaded = self.files.current();
        Ok(Response::new(StatusResponse {
            generation: loaded.generation,
            users: u32::try_from(loaded.users.len()).unwrap_or(u32::MAX),
            refused_lines: u32::try_from(loaded.users.refused.len()).unwrap_or(u32::MAX),
            policy: loaded.policy.is_some(),
            failed_reloads: self.files.failed_reloads(),
        }))
    }
}
