//! Which permission each endpoint needs, checked before its handler runs.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::{Method, request::Parts};
use registry_core::RegistryError;

use crate::AppState;
use crate::auth::{Action, AuthGate, Principal};
use crate::endpoint::Endpoint;
use crate::query::Query;

/// What a request was allowed to do.
#[derive(Debug)]
pub struct Granted {
    /// `None` when the registry runs without authentication.
    pub principal: Option<Principal>,
    /// Whether a `POST ?mount=` may link the blob.
    pub mount: MountScope,
}

/// Where a cross-repository mount may take a blob from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MountScope {
    /// Without authentication: from `from`, or from anywhere without it.
    Anywhere,
    /// Only from `from`, which the user may pull.
    FromOnly,
    /// Not at all: the upload falls back to a session.
    Nowhere,
}

/// The action an endpoint needs on its repository, or `None` for the
/// endpoints that only need a logged-in user.
fn required(endpoint: &Endpoint, method: &Method) -> Option<Action> {
    let reading = matches!(*method, Method::GET | Method::HEAD);
    match endpoint {
        Endpoint::Base | Endpoint::Catalog => None,
        Endpoint::Tags(_) | Endpoint::Referrers(..) => Some(Action::Pull),
        Endpoint::Manifest(..) | Endpoint::ManifestBadReference(..) | Endpoint::Blob(..)
            if reading =>
        {
            Some(Action::Pull)
        }
        Endpoint::Manifest(..) | Endpoint::ManifestBadReference(..) if *method == Method::PUT => {
            Some(Action::Push)
        }
        Endpoint::Manifest(..) | Endpoint::ManifestBadReference(..) | Endpoint::Blob(..) => {
            Some(Action::Delete)
        }
        Endpoint::UploadStart(_) | Endpoint::Upload(..) => Some(Action::Push),
    }
}

/// The connection's peer address.
fn peer_address(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip())
}

/// Authenticates and authorizes a request for `endpoint`.
pub async fn check(
    state: &AppState,
    endpoint: &Endpoint,
    parts: &Parts,
    query: &Query,
) -> Result<Granted, RegistryError> {
    let Some(gate) = &state.auth else {
        return Ok(Granted {
            principal: None,
            mount: MountScope::Anywhere,
        });
    };
    let principal = gate
        .authenticate(&parts.headers, peer_address(parts))
        .await?;
    match (required(endpoint, &parts.method), endpoint.repository()) {
        (Some(action), Some(name)) => gate.authorize(&principal, name, action).await?,
        _ => gate.require_user(&principal)?,
    }
    let mount = mount_scope(gate, &principal, endpoint, query).await?;
    Ok(Granted {
        principal: Some(principal),
        mount,
    })
}

async fn mount_scope(
    gate: &AuthGate,
    principal: &Principal,
    endpoint: &Endpoint,
    query: &Query,
) -> Result<MountScope, RegistryError> {
    let (Endpoint::UploadStart(_), Some(from)) = (endpoint, query.get("from")) else {
        return Ok(MountScope::Nowhere);
    };
    let Ok(from) = from.parse() else {
        return Ok(MountScope::Nowhere);
    };
    let allowed = gate.allowed(principal, &[from], Action::Pull).await?;
    Ok(if allowed[0] {
        MountScope::FromOnly
    } else {
        MountScope::Nowhere
    })
}

/// Whether a request may see each repository of the catalog.
pub async fn visible(
    state: &AppState,
    principal: Option<&Principal>,
    names: &[registry_core::RepositoryName],
) -> Result<Vec<bool>, RegistryError> {
    match (&state.auth, principal) {
        (Some(gate), Some(principal)) => gate.allowed(principal, names, Action::Pull).await,
        _ => Ok(vec![true; names.len()]),
    }
}
