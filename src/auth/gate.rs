//! The gate every route but health passes: a valid token, of a registered and active tenant,
//! with an unexpired licence, for a user who holds (or can take) a seat.

use std::sync::Arc;

use chrono::Utc;

use super::token::{BearerToken, Principal, TokenError, TokenValidator, Upn, bearer_from_header};
use crate::crypto::UpnIndexer;
use crate::domain::{TenantId, TenantRecord, TenantStatus};
use crate::store::{Admission, Store, StoreError};
use crate::telemetry::TenantLogSink;

/// A caller that passed the gate.
pub struct Caller {
    pub principal: Principal,
    pub tenant: TenantRecord,
    /// The caller's own token, kept for the on-behalf-of exchange of this one request.
    pub token: BearerToken,
}

/// Why the gate refused a request; each maps to one HTTP status and stable error code.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("tenant is not registered with GroupMgr")]
    TenantNotRegistered,
    #[error("tenant is suspended")]
    TenantSuspended,
    #[error("tenant has been offboarded")]
    TenantOffboarded,
    #[error("the tenant's GroupMgr licence has expired")]
    LicenceExpired,
    #[error("all licensed seats of the tenant are taken")]
    SeatsExhausted,
    #[error("a user token is required (this token names no user)")]
    UserRequired,
    #[error("this client application may not call the GroupMgr API")]
    ClientNotAllowed,
    #[error("store unavailable")]
    Store(#[from] StoreError),
}

/// The API's delegated scope (the app registration exposes it, admin consent only).
pub const API_SCOPE: &str = "access_as_user";

/// Token validation plus the tenant and licence checks.
pub struct Gate {
    validator: TokenValidator,
    store: Arc<dyn Store>,
    indexer: UpnIndexer,
    /// Seals admitted users' UPNs to the tenant key (absent in tools that only validate).
    tenant_log: Option<TenantLogSink>,
    /// The client applications whose user tokens are accepted (none: no user token is).
    allowed_clients: Vec<uuid::Uuid>,
}

impl Gate {
    pub fn new(
        validator: TokenValidator,
        store: Arc<dyn Store>,
        indexer: UpnIndexer,
        tenant_log: Option<TenantLogSink>,
    ) -> Self {
        Self {
            validator,
            store,
            indexer,
            tenant_log,
            allowed_clients: Vec::new(),
        }
    }

    /// Accepts user tokens issued to these client applications (the GroupMgr UI) only: any
    /// other app a user consented to could otherwise act, through the on-behalf-of exchange,
    /// with GroupMgr's admin-consented rights.
    pub fn allowing(mut self, clients: Vec<uuid::Uuid>) -> Self {
        self.allowed_clients = clients;
        self
    }

    pub fn validator(&self) -> &TokenValidator {
        &self.validator
    }

    /// Checks the `Authorization` header value and admits the caller, or says why not (and,
    /// once the token is known to be genuine, who was refused).
    pub async fn admit(&self, authorization: Option<&str>) -> Result<Caller, Refused> {
        let token = bearer_from_header(authorization).map_err(Refused::anonymous)?;
        let principal = self.validator.validate(&token).await.map_err(Refused::anonymous)?;
        // An unregistered tenant has no tenant log to write to.
        let who = |error: GateError| Refused {
            tenant: (!matches!(error, GateError::TenantNotRegistered)).then_some(principal.tenant),
            upn: principal.upn.clone(),
            error,
        };
        self.check(token, &principal).await.map_err(who)
    }

    async fn check(&self, token: BearerToken, principal: &Principal) -> Result<Caller, GateError> {
        // No route serves an application: only users, through the GroupMgr UI, with the
        // API's delegated scope.
        if principal.app_only {
            return Err(GateError::UserRequired);
        }
        if !principal.client.is_some_and(|c| self.allowed_clients.contains(&c)) {
            return Err(GateError::ClientNotAllowed);
        }
        if !principal.scopes.iter().any(|s| s == API_SCOPE) {
            return Err(GateError::Token(TokenError::Invalid(
                "the token lacks the access_as_user scope",
            )));
        }
        let tenant = self
            .store
            .tenant(&principal.tenant)
            .await?
            .ok_or(GateError::TenantNotRegistered)?;
        match tenant.status {
            TenantStatus::Active => {}
            TenantStatus::Suspended => return Err(GateError::TenantSuspended),
            TenantStatus::Offboarded => return Err(GateError::TenantOffboarded),
        }
        let now = Utc::now();
        if !tenant.licence_valid_on(now.date_naive()) {
            return Err(GateError::LicenceExpired);
        }
        let upn = principal.upn.as_ref().ok_or(GateError::UserRequired)?;
        let index = self.indexer.index(&tenant.tenant_id, upn.expose());
        let admission = self
            .store
            .admit_user(&tenant.tenant_id, &index, tenant.seats, now)
            .await?;
        let tenant_id = tenant.tenant_id.to_string();
        let needs_sealed_copy = match admission {
            Admission::Admitted => {
                tracing::info!(event = "user_admitted", tenant_id, user = upn.expose());
                true
            }
            Admission::Existing { upn_sealed } => !upn_sealed,
            Admission::SeatsExhausted => {
                tracing::warn!(event = "seat_refused", tenant_id, user = upn.expose());
                return Err(GateError::SeatsExhausted);
            }
        };
        // The encrypted copy of the UPN can only be made once the tenant has a log key.
        if needs_sealed_copy
            && tenant.log_key.is_some()
            && let Some(tenant_log) = &self.tenant_log
        {
            tenant_log.seal_upn(tenant.tenant_id, index, upn);
        }
        Ok(Caller {
            principal: principal.clone(),
            tenant,
            token,
        })
    }
}

/// A refused request: why, and who it was when the token itself was genuine (so that the
/// request can still be logged for the tenant).
#[derive(Debug)]
pub struct Refused {
    pub error: GateError,
    pub tenant: Option<TenantId>,
    pub upn: Option<Upn>,
}

impl Refused {
    fn anonymous(e: impl Into<GateError>) -> Self {
        Self {
            error: e.into(),
            tenant: None,
            upn: None,
        }
    }
}
