//! The gate every route but health passes: a valid token, of a registered and active tenant,
//! with an unexpired licence, for a user who holds (or can take) a seat.

use std::sync::Arc;

use chrono::Utc;

use super::token::{BearerToken, Principal, TokenError, TokenValidator, bearer_from_header};
use crate::crypto::UpnIndexer;
use crate::domain::{TenantRecord, TenantStatus};
use crate::store::{Admission, Store, StoreError};

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
    #[error("store unavailable")]
    Store(#[from] StoreError),
}

/// Token validation plus the tenant and licence checks.
pub struct Gate {
    validator: TokenValidator,
    store: Arc<dyn Store>,
    indexer: UpnIndexer,
}

impl Gate {
    pub fn new(validator: TokenValidator, store: Arc<dyn Store>, indexer: UpnIndexer) -> Self {
        Self {
            validator,
            store,
            indexer,
        }
    }

    pub fn validator(&self) -> &TokenValidator {
        &self.validator
    }

    /// Checks the `Authorization` header value and admits the caller, or says why not.
    pub async fn admit(&self, authorization: Option<&str>) -> Result<Caller, GateError> {
        let token = bearer_from_header(authorization)?;
        let principal = self.validator.validate(&token).await?;
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
        match self
            .store
            .admit_user(&tenant.tenant_id, &index, tenant.seats, now)
            .await?
        {
            Admission::Existing { .. } | Admission::Admitted => {}
            Admission::SeatsExhausted => return Err(GateError::SeatsExhausted),
        }
        Ok(Caller {
            principal,
            tenant,
            token,
        })
    }
}
